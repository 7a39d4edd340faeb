# WebSocketSendQueueLimit (65536 on /qlimit): a subscriber that reads
# nothing is dropped once published messages pile up beyond the limit,
# while another subscriber of the same channel gets every message, intact
# and in order, before, during and after.  A publisher on /qlimit
# (WebSocketChannelEcho off) sends 8 KiB binary messages; the kernel
# buffers some MiB for the stalled socket (its receive window does not grow
# while it reads nothing) before the server's queue for it grows.
# The drop is seen from the server's side (no httpd process holds the
# socket any more); what the stalled socket then reads is a prefix of the
# messages, ended by close 1008 "send queue limit" if that fitted, or just
# by the end of the connection.  ws and wss; both drivers.
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib "$FindBin::Bin/../lib";

use Apache::Test qw(-withtestmore);
use Test::More import => ["!plan"];
use Time::HiRes qw(time sleep);
use WsTest;
use WsChannel;

use constant { TEXT => 1, BIN => 2 };

my $SIZE = 8 * 1024;
my $MAX_MSGS = 4096;            # 32 MiB at most
my $AFTER = 32;                 # messages sent after the drop
my $FLOOD_TIME = 30;

my $FILL = WsTest::random_bytes($SIZE);
sub payload { my $i = shift; return pack('N', $i) . substr($FILL, 4 + $i % 64) . substr($FILL, 0, $i % 64) }

sub queue_case {
    my $v = shift;
    my $stalled = WsChannel::subscriber($v, '/qlimit');
    my $fast = WsChannel::subscriber($v, '/qlimit');
    my $pub = WsChannel::subscriber($v, '/qlimit');
    note("stalled $stalled->{id}, fast $fast->{id}, publisher $pub->{id}");
    ok($stalled->serving_pid, 'the stalled socket is held by child ' . $stalled->serving_pid);

    my($next, $bad) = (0, undef);
    my $on_fast = sub {
        my $f = $_[1];
        if (!$bad && !($f->{opcode} == BIN && $f->{payload} eq payload($next))) {
            $bad = sprintf('message %d: opcode %d, %d bytes, index %s', $next, $f->{opcode},
                           length $f->{payload}, unpack('N', $f->{payload} . "\0\0\0\0"));
        }
        $next++;
    };

    my($sent, $dropped_at, $t0) = (0, undef, time);
    while ($sent < $MAX_MSGS && time - $t0 < $FLOOD_TIME) {
        $pub->send_binary(payload($sent)) or die "publisher: write failed ($pub->{write_error})\n";
        $sent++;
        WsChannel::pump([$fast], 0.002, $on_fast);
        if (!defined $dropped_at && $sent % 8 == 0 && !$stalled->serving_pid) {
            $dropped_at = $sent;
        }
        last if defined $dropped_at && $sent >= $dropped_at + $AFTER;
    }
    ok(defined $dropped_at, sprintf('the stalled socket was dropped after %s messages (%.1f MiB)',
                                    $dropped_at // 'no', ($dropped_at // $sent) * $SIZE / 1048576))
        or diag("$sent messages sent in " . sprintf('%.1f', time - $t0) . ' s');

    WsChannel::pump([$fast], 30, $on_fast, sub { $next >= $sent || $bad });
    is($next, $sent, "the other subscriber got all $sent messages, $AFTER of them after the drop");
    ok(!$bad, '... intact and in order') or diag($bad);
    ok($pub->still_open(0.2), 'the publisher is still connected');

    # what the stalled socket got: the first k messages, then the end
    my($k, $sbad) = (0, undef);
    WsChannel::pump([$stalled], 20, sub {
        my $f = $_[1];
        $sbad //= "message $k differs" unless $f->{opcode} == BIN && $f->{payload} eq payload($k);
        $k++;
    });
    ok($stalled->{ended}, 'the stalled socket ends (' . ($stalled->{ended} // 'still open') . ')')
        or diag("read $k messages; " . `ss -tn '( sport = :@{[ $stalled->sock->sockport ]} or dport = :@{[ $stalled->sock->sockport ]} )'`);
    ok(!$sbad, "it read $k messages, the first ones in order") or diag($sbad);
    ok($k < $sent, "fewer than the $sent sent");
    if (defined $stalled->{close_code}) {
        is($stalled->{close_code}, 1008, 'its close frame: 1008');
        is($stalled->{close_reason}, 'send queue limit', 'reason "send queue limit"');
    }

    for my $c ($fast, $pub) {
        $c->send_close(1000);
        my($code) = $c->expect_close(10);
        is($code, 1000, 'close 1000 echoed');
    }
    $stalled->close;
}

plan tests => 2;
WsTest::diag_to_stderr();

WsTest::run_cases(['a stalled subscriber is dropped, the others keep receiving' => \&queue_case]);
