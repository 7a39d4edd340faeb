# mod_ws's figures on /server-status (mod_status): the ?auto lines and the
# HTML section.  The figures are server-wide (shared memory over all
# children) and count since each child started, so every check is a
# difference between two readings: 3 ws + 3 wss sockets on /echo, a known
# number of messages on each, their closes (1000), and one refused
# handshake of each kind (bad key 400, version 12 426, foreign Origin 403)
# on ws and on wss.  With MOD_WS_DRIVER=thread no socket is on a reactor.
# (mod_status.t, not status.t: it must sort before restart.t.)
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib "$FindBin::Bin/../lib";

use Apache::Test qw(-withtestmore);
use Test::More import => ["!plan"];
use Time::HiRes qw(time sleep);
use WsTest;

use constant { TEXT => 1, BIN => 2 };

my $THREAD = ($ENV{MOD_WS_DRIVER} // '') eq 'thread';
my $PER_VARIANT = 3;        # sockets per variant
my $MSGS = 4;               # messages per socket (2 text, 2 binary)
my $SETTLE = 2;             # seconds to wait for counts updated at close

my @CLOSE_CODES = (1000, 1001, 1002, 1003, 1006, 1007, 1008, 1009, 1011);
my @KEYS = (qw(WebSocketChildren WebSocketsOpen WebSocketsOpenReactor
               WebSocketsOpened WebSocketMessagesIn WebSocketMessagesOut
               WebSocketBytesIn WebSocketBytesOut),
            (map { "WebSocketCloses$_" } @CLOSE_CODES),
            qw(WebSocketClosesOther WebSocketRefusedBadRequest
               WebSocketRefusedOrigin WebSocketRefusedVersion
               WebSocketRefusedFull));

# /server-status?auto as { key => value } (mod_ws's lines and the rest)
sub read_status {
    my $v = shift || 'ws';
    my $r = WsTest::http_request($v, 'GET', '/server-status?auto', timeout => 5);
    die "$v: /server-status?auto answered " . ($r->status_line // 'nothing') . "\n"
        unless $r->status == 200;
    my %s;
    for my $l (split /\r?\n/, $r->body // '') {
        $s{$1} = $2 if $l =~ /^([^:]+):\s*(.*?)\s*$/;
    }
    return \%s;
}

sub delta {
    my($before, $after, $key) = @_;
    return ($after->{$key} // 0) - ($before->{$key} // 0);
}

# Read until $cond->($status) holds or $t seconds pass; the last reading.
sub poll_status {
    my($v, $t, $cond) = @_;
    my $deadline = time + $t;
    while (1) {
        my $s = read_status($v);
        return $s if $cond->($s) || time >= $deadline;
        sleep 0.1;
    }
}

# a changing set of wire bytes for the messages of socket $n
sub payloads {
    my($v, $n) = @_;
    return ("text $v $n one", WsTest::binary_data(300 + $n),
            WsTest::utf8_text(70000), WsTest::binary_data(1000 + 7 * $n));
}

plan tests => 7;
WsTest::diag_to_stderr();

subtest 'the ?auto lines' => sub {
    # sockets of an earlier test file may still be closing: let them go
    eval { poll_status('ws', 5, sub { ($_[0]->{WebSocketsOpen} // 0) == 0 }) };
    for my $v (WsTest::variants()) {
        my $s = eval { read_status($v) };
        ok($s, "$v: /server-status?auto answers 200") or diag($@), next;
        for my $k (@KEYS) {
            like($s->{$k} // 'missing', qr/^\d+$/, "$v: $k is a number");
        }
        my @kids = WsTest::child_pids(WsTest::server_pid());
        is($s->{WebSocketChildren}, scalar(@kids),
           "$v: WebSocketChildren is the number of children (@kids)");
        is($s->{WebSocketsOpen}, 0, "$v: no WebSocket open now");
        ok($s->{WebSocketsOpenReactor} <= $s->{WebSocketsOpen},
           "$v: WebSocketsOpenReactor <= WebSocketsOpen");
    }
    done_testing();
};

subtest 'the HTML page' => sub {
    for my $v (WsTest::variants()) {
        my $r = WsTest::http_request($v, 'GET', '/server-status', timeout => 5);
        is($r->status, 200, "$v: /server-status answers 200");
        like($r->body // '', qr{<h2>WebSockets \(mod_ws\)</h2>},
             "$v: it has the \"WebSockets (mod_ws)\" heading");
        like($r->body // '', qr{\d+ open \(\d+ on reactors\), \d+ opened},
             "$v: and the open/opened figures");
    }
    done_testing();
};

# Shared by the next subtests: the open sockets and the readings.
my(@socks, $s0, $s1, $payload_bytes, $wire_bytes, $echo_bytes, $sent_msgs);

subtest "open $PER_VARIANT ws + $PER_VARIANT wss sockets, $MSGS messages each" => sub {
    $s0 = read_status('ws');
    ($payload_bytes, $wire_bytes, $echo_bytes, $sent_msgs) = (0, 0, 0, 0);
    for my $v (WsTest::variants()) {
        for my $n (1 .. $PER_VARIANT) {
            my $c = WsTest->connect($v, '/echo');
            is($c->status, 101, "$v #$n: 101") or next;
            $c->{name} = "$v #$n";
            push @socks, $c;
        }
    }
    is(scalar(@socks), 2 * $PER_VARIANT, 'all sockets open') or return done_testing();

    my($echoed, $n) = (0, 0);
    for my $c (@socks) {
        my @p = payloads($c->variant, ++$n);
        my @op = (TEXT, BIN, TEXT, BIN);
        for my $i (0 .. $#p) {
            my $frame = WsTest::build_frame(opcode => $op[$i], payload => $p[$i]);
            $c->send_raw($frame) or diag("$c->{name}: write failed");
            $payload_bytes += length $p[$i];
            $wire_bytes += length $frame;
            # the server's unmasked frame: 2, 4 or 10 header bytes
            my $len = length $p[$i];
            $echo_bytes += $len + ($len < 126 ? 2 : $len < 65536 ? 4 : 10);
            $sent_msgs++;
        }
        for my $i (0 .. $#p) {
            my $m = $c->read_message(10);
            $echoed++ if $m && !$m->{eof} && defined $m->{opcode}
                && $m->{opcode} == $op[$i] && $m->{payload} eq $p[$i];
        }
    }
    is($echoed, $sent_msgs, "all $sent_msgs messages echoed");

    my $want_reactor = $THREAD ? 0 : 2 * $PER_VARIANT;
    # the out-counters are added when the write returns: allow a moment
    $s1 = poll_status('wss', $SETTLE, sub {
        delta($s0, $_[0], 'WebSocketMessagesOut') >= $sent_msgs
            && delta($s0, $_[0], 'WebSocketBytesOut') >= $echo_bytes });
    is(delta($s0, $s1, 'WebSocketsOpen'), 2 * $PER_VARIANT, 'WebSocketsOpen grew by 6');
    is(delta($s0, $s1, 'WebSocketsOpenReactor'), $want_reactor,
       "WebSocketsOpenReactor grew by $want_reactor" . ($THREAD ? ' (thread driver)' : ''));
    is(delta($s0, $s1, 'WebSocketsOpened'), 2 * $PER_VARIANT, 'WebSocketsOpened grew by 6');
    is(delta($s0, $s1, 'WebSocketMessagesIn'), $sent_msgs, "WebSocketMessagesIn grew by $sent_msgs");
    is(delta($s0, $s1, 'WebSocketMessagesOut'), $sent_msgs, "WebSocketMessagesOut grew by $sent_msgs");
    my $bin = delta($s0, $s1, 'WebSocketBytesIn');
    my $bout = delta($s0, $s1, 'WebSocketBytesOut');
    ok($bin >= $payload_bytes, "WebSocketBytesIn grew by at least the $payload_bytes payload bytes")
        or diag("grew by $bin");
    ok($bout >= $payload_bytes, "WebSocketBytesOut grew by at least the $payload_bytes payload bytes")
        or diag("grew by $bout");
    # nothing else runs: the figures are exactly the frames on the wire
    is($bin, $wire_bytes, "WebSocketBytesIn grew by the $wire_bytes bytes of the frames sent");
    is($bout, $echo_bytes, "WebSocketBytesOut grew by the $echo_bytes bytes of the echoed frames");
    is(delta($s0, $s1, "WebSocketCloses$_"), 0, "no close counted yet ($_)") for 1000;
    done_testing();
};

subtest 'close them all with 1000' => sub {
    plan skip_all => 'no sockets' unless @socks && $s1;
    my $ok = 0;
    for my $c (@socks) {
        $c->send_close(1000);
        my($code) = $c->expect_close(10);
        my $eof = $c->wait_eof(10);
        $ok++ if defined $code && $code == 1000 && $eof;
        diag("$c->{name}: close " . ($code // 'none') . ($eof ? '' : ', no EOF'))
            unless defined $code && $code == 1000 && $eof;
    }
    is($ok, scalar(@socks), 'every socket: close 1000 answered, then EOF');
    my $s2 = poll_status('ws', $SETTLE, sub {
        ($_[0]->{WebSocketsOpen} // -1) == $s0->{WebSocketsOpen}
            && delta($s0, $_[0], 'WebSocketCloses1000') >= @socks });
    is($s2->{WebSocketsOpen}, $s0->{WebSocketsOpen}, "WebSocketsOpen back to $s0->{WebSocketsOpen}");
    is($s2->{WebSocketsOpenReactor}, $s0->{WebSocketsOpenReactor},
       "WebSocketsOpenReactor back to $s0->{WebSocketsOpenReactor}");
    is(delta($s0, $s2, 'WebSocketCloses1000'), scalar(@socks), 'WebSocketCloses1000 grew by ' . @socks);
    for my $k ((map { "WebSocketCloses$_" } grep { $_ != 1000 } @CLOSE_CODES), 'WebSocketClosesOther') {
        is(delta($s0, $s2, $k), 0, "$k unchanged");
    }
    is(delta($s1, $s2, 'WebSocketMessagesIn'), 0, 'close frames are not counted as messages');
    for my $k (qw(WebSocketRefusedBadRequest WebSocketRefusedOrigin
                  WebSocketRefusedVersion WebSocketRefusedFull)) {
        is(delta($s0, $s2, $k), 0, "$k unchanged by good handshakes");
    }
    @socks = ();
    done_testing();
};

my @refusals = (
    [ 'bad key', 400, 'WebSocketRefusedBadRequest', key => 'abc' ],
    [ 'version 12', 426, 'WebSocketRefusedVersion',
      headers => ['Sec-WebSocket-Version' => '12'] ],
    [ 'foreign Origin', 403, 'WebSocketRefusedOrigin',
      headers => [Origin => 'http://evil.example'] ],
);
my @REFUSED = map { $_->[2] } @refusals;

for my $v (WsTest::variants()) {
    subtest "$v: refused handshakes" => sub {
        for my $case (@refusals) {
            my($name, $status, $key, %o) = @$case;
            my $before = read_status($v);
            my $c = WsTest->connect($v, '/echo', %o);
            is($c->status, $status, "$name: $status") or diag($c->status_line);
            my $after = poll_status($v, $SETTLE, sub { delta($before, $_[0], $key) >= 1 });
            for my $k (@REFUSED, 'WebSocketRefusedFull') {
                is(delta($before, $after, $k), $k eq $key ? 1 : 0,
                   "$name: $k " . ($k eq $key ? 'grew by 1' : 'unchanged'));
            }
            is(delta($before, $after, 'WebSocketsOpened'), 0, "$name: nothing opened");
        }
        done_testing();
    };
}

subtest 'a socket still open shows up, then goes' => sub {
    # the HTML figures and ?auto agree on an open socket (ws and wss)
    my $s = read_status('ws');
    my @c = map { WsTest->connect($_, '/echo') } WsTest::variants();
    is(join(' ', map { $_->status } @c), '101 101', 'one ws and one wss open');
    my $mid = read_status('wss');
    is(delta($s, $mid, 'WebSocketsOpen'), 2, 'WebSocketsOpen grew by 2');
    my $r = WsTest::http_request('ws', 'GET', '/server-status', timeout => 5);
    my($open) = ($r->body // '') =~ /(\d+) open \(\d+ on reactors\)/;
    is($open, $mid->{WebSocketsOpen}, 'the HTML page shows the same open count');
    # the client drops TCP without a close frame: 1006
    $_->close for @c;
    my $end = poll_status('ws', $SETTLE, sub {
        ($_[0]->{WebSocketsOpen} // -1) == $s->{WebSocketsOpen} });
    is($end->{WebSocketsOpen}, $s->{WebSocketsOpen}, 'WebSocketsOpen back after the client dropped TCP');
    is(delta($s, $end, 'WebSocketCloses1006'), 2, 'WebSocketCloses1006 grew by 2');
    done_testing();
};
