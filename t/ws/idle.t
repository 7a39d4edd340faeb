# Idle connections, pings and the idle timeout. ws and wss.
#
# - Sockets left idle for 60 s stay open and then echo: mod_reqtimeout
#   (Debian: body=10,minrate=500) must be gone after the 101. On /echo the
#   default WebSocketPingInterval (30 s) pings arrive meanwhile; on /quiet
#   (no pings, no idle timeout) nothing arrives at all.
# - /pinger (PingInterval 1, IdleTimeout 3): pings arrive about every
#   second; a peer that answers them (or sends data) stays connected; a
#   peer that goes silent gets close 1001 after about 3 s and is dropped.
# The 60 s are paid once: the idle sockets are opened first and the
# /pinger checks run while they wait.
# Control: in the same 60 s, plain HTTP requests that stall in the header
# (Debian: header=20-40) or body (body=10) stage are cut off by
# mod_reqtimeout, so it really is active in this server.
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib "$FindBin::Bin/../lib";

use Apache::Test qw(-withtestmore);
use Test::More import => ["!plan"];
use Time::HiRes qw(time sleep);
use WsTest;

use constant { CONT => 0, TEXT => 1, BIN => 2, CLOSE => 8, PING => 9, PONG => 10 };

my $IDLE = 60;

plan tests => 2 + 4 + 1 + 3;
WsTest::diag_to_stderr();

my $t0 = time;
my %idle;
for my $v (WsTest::variants()) {
    for my $path ('/quiet', '/echo') {
        $idle{"$v $path"} = WsTest->connect($v, $path);
    }
}

# stalled plain HTTP requests, for the control
my %stalled;
for my $v (WsTest::variants()) {
    my $c = WsTest->open_socket($v);
    $c->send_raw("GET /plain HTTP/1.1\r\nHost: " . WsTest::host_header($v) . "\r\n");
    $stalled{"$v: request stalled in the headers"} = $c;
}
{
    my $c = WsTest->open_socket('ws');
    $c->send_raw("POST /plain HTTP/1.1\r\nHost: " . WsTest::host_header('ws')
                 . "\r\nContent-Length: 100\r\n\r\nonly part of the body");
    $stalled{"ws: request stalled in the body"} = $c;
}

sub pinger {
    my $v = shift;
    my $c = WsTest->connect($v, '/pinger');
    is($c->status, 101, 'handshake') or return;

    # 1. answer every ping for 6 s: the connection stays open
    my(@ping_at, $bad, $last_sent);
    my $start = time;
    $last_sent = $start;
    while (time - $start < 6) {
        my $f = $c->read_frame(0.3);
        next unless $f;
        if ($f->{eof} || $f->{opcode} == CLOSE) {
            $bad = $f->{eof} ? 'connection closed' : 'close frame ' . unpack('n', $f->{payload} . "\0\0");
            last;
        }
        if ($f->{opcode} == PING) {
            push @ping_at, time;
            $bad ||= 'masked or fragmented ping' if $f->{masked} || !$f->{fin};
            $c->send_pong($f->{payload});
            $last_sent = time;
        }
        else {
            $bad = "unexpected frame opcode $f->{opcode}";
            last;
        }
    }
    ok(!$bad, 'answering pings keeps the connection open for 6 s') or diag($bad);
    cmp_ok(scalar(@ping_at), '>=', 3, 'pings arrive about every second (' . scalar(@ping_at) . ' in 6 s)');
    cmp_ok(scalar(@ping_at), '<=', 12, 'but not much more often');
    return if $bad;

    # 2. do not answer pings, but send a message every second for 5 s:
    #    receiving data also counts as activity
    my $echoed = 0;
    my $pings2 = 0;
    $start = time;
    my $next = $start;
    while (time - $start < 5 && !$bad) {
        if (time >= $next) {
            $c->send_text("tick $echoed");
            $last_sent = time;
            $next += 1;
        }
        my $f = $c->read_frame(0.2);
        next unless $f;
        if ($f->{eof} || $f->{opcode} == CLOSE) {
            $bad = $f->{eof} ? 'connection closed' : 'close frame';
        }
        elsif ($f->{opcode} == PING) { $pings2++ }
        elsif ($f->{opcode} == TEXT) { $echoed++ }
    }
    ok(!$bad, 'sending data (no pongs) keeps the connection open for 5 s') or diag($bad);
    cmp_ok($echoed, '>=', 4, "messages echoed meanwhile ($echoed)");

    # 3. silence: close 1001 after about WebSocketIdleTimeout (3 s)
    my($code, $reason, $f) = $c->expect_close(12);
    my $after = time - $last_sent;
    ok($f, 'a silent peer gets a close frame') or diag($c->is_eof ? 'TCP closed without close' : 'timeout');
    is($code, 1001, 'close code 1001 (going away)');
    ok($after >= 2.5 && $after <= 7, sprintf('close came %.1f s after the last frame we sent (idle timeout 3 s)', $after));
    my @data = grep { $_->{opcode} != PING } $c->skipped_frames;
    is(scalar(@data), 0, 'only pings before the close');
    # we never answer the close: the server drops the connection itself
    my $t = time;
    ok($c->wait_eof(10), sprintf('TCP closed by the server (%.1f s after the close frame)', time - $t));
}

for my $v (WsTest::variants()) {
    subtest "$v: /pinger: pings, activity and the idle timeout" => sub {
        my $ok = eval { pinger($v); 1 };
        ok(0, 'no exception') or diag($@) unless $ok;
        done_testing();
    };
}

# the rest of the idle period
my $left = $t0 + $IDLE - time;
sleep $left if $left > 0;
my $waited = time - $t0;
cmp_ok($waited, '>=', $IDLE, sprintf('sockets were idle for %.0f s', $waited));

for my $name (sort keys %stalled) {
    ok($stalled{$name}->wait_eof(2), "$name: closed by mod_reqtimeout meanwhile");
}

for my $key (sort keys %idle) {
    my($v, $path) = split ' ', $key;
    my $c = $idle{$key};
    subtest "$v: $path idle for ${IDLE} s, then echoes" => sub {
        is($c->status, 101, 'handshake') or return done_testing();
        # what arrived during the wait
        my @frames;
        while (my $f = $c->read_frame(0.5)) {
            push @frames, $f;
            last if $f->{eof} || $f->{opcode} == CLOSE;
        }
        my @other = grep { $_->{eof} || $_->{opcode} != PING } @frames;
        my @pings = grep { !$_->{eof} && $_->{opcode} == PING } @frames;
        ok(!@other, 'still open, nothing but pings arrived')
            or diag(join ', ', map { $_->{eof} ? 'eof' : "opcode $_->{opcode}" } @other);
        if ($path eq '/quiet') {
            is(scalar(@pings), 0, 'no pings with WebSocketPingInterval 0');
        }
        else {
            cmp_ok(scalar(@pings), '>=', 1,
                   'default WebSocketPingInterval (30 s): pings arrived (' . scalar(@pings) . ')');
        }
        $c->send_pong($_->{payload}) for @pings;
        $c->send_text("awake after $IDLE s");
        my $m = $c->read_message(10);
        ok($m && defined $m->{opcode} && $m->{opcode} == TEXT && $m->{payload} eq "awake after $IDLE s",
           'echoes after the idle period');
        $c->send_close(1000);
        my($code) = $c->expect_close(10);
        is($code, 1000, 'closes cleanly');
        done_testing();
    };
}
