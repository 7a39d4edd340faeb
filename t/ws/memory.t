# 100 000 messages on one WebSocket must not grow the serving httpd process
# by 1 MiB or more (pools cleared per message, brigades reused). ws and wss.
#
# The process is the httpd child that holds the server side of our TCP
# connection (found through /proc). Its VmRSS is taken after a warm-up of
# 5 000 messages and again after 100 000 more. Messages are pipelined in
# batches: sizes vary from 1 to 1500 bytes, text and binary alternate,
# every 10th message is fragmented and every 100th is preceded by a ping.
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib "$FindBin::Bin/../lib";

use Apache::Test qw(-withtestmore);
use Test::More import => ["!plan"];
use Time::HiRes qw(time);
use WsTest;

use constant { CONT => 0, TEXT => 1, BIN => 2, CLOSE => 8, PING => 9, PONG => 10 };

my $WARMUP   = 5_000;
my $MESSAGES = 100_000;
my $BATCH    = 250;
my $LIMIT_KB = 1024;

plan tests => 2 * 6;
WsTest::diag_to_stderr();

my $pool = join '', map { chr(32 + ($_ * 7919) % 95) } 1 .. 4096;   # printable ASCII

# send $n messages starting at number $from; verify every echo
sub run_messages {
    my($c, $from, $n) = @_;
    my $done = 0;
    while ($done < $n) {
        my $count = $n - $done > $BATCH ? $BATCH : $n - $done;
        my(@expect, $wire);
        $wire = '';
        for my $k (0 .. $count - 1) {
            my $i = $from + $done + $k;
            my $len = 1 + ($i * 37) % 1500;
            my $payload = substr($pool, $i % 2048, $len > 2048 ? 2048 : $len);
            my $op = $i % 2 ? TEXT : BIN;
            if ($i % 100 == 0) {
                $wire .= WsTest::build_frame(opcode => PING, payload => "p$i");
                push @expect, [PONG, "p$i"];
            }
            if ($i % 10 == 5 && $len >= 3) {
                my $a = int($len / 3);
                $wire .= WsTest::build_frame(opcode => $op, payload => substr($payload, 0, $a), fin => 0)
                       . WsTest::build_frame(opcode => CONT, payload => substr($payload, $a, $a), fin => 0)
                       . WsTest::build_frame(opcode => CONT, payload => substr($payload, 2 * $a), fin => 1);
            }
            else {
                $wire .= WsTest::build_frame(opcode => $op, payload => $payload);
            }
            push @expect, [$op, $payload];
        }
        $c->send_raw($wire, 60) or return "write failed after " . ($from + $done) . " messages: "
            . ($c->{write_error} // '?');
        for my $e (@expect) {
            my $f = $c->read_frame(30);
            return 'timeout waiting for an echo' unless $f;
            return 'connection closed' if $f->{eof};
            return "wrong reply: opcode $f->{opcode}, " . length($f->{payload}) . " bytes"
                unless $f->{opcode} == $e->[0] && $f->{payload} eq $e->[1];
        }
        $done += $count;
    }
    return '';
}

for my $v (WsTest::variants()) {
    my $c = WsTest->connect($v, '/echo');
    is($c->status, 101, "$v: handshake");
    my $err = run_messages($c, 0, $WARMUP);
    is($err, '', "$v: $WARMUP warm-up messages echoed");
    my $pid = $c->serving_pid;
    ok($pid, "$v: found the httpd process serving the connection ($pid)");
    my $rss0 = $pid ? WsTest::rss_kb($pid) : undef;
    my $t = time;
    $err = run_messages($c, $WARMUP, $MESSAGES);
    my $secs = time - $t;
    is($err, '', sprintf("$v: $MESSAGES messages echoed in %.1f s", $secs));
    my $rss1 = $pid ? WsTest::rss_kb($pid) : undef;
    if (defined $rss0 && defined $rss1) {
        my $grow = $rss1 - $rss0;
        cmp_ok($grow, '<', $LIMIT_KB,
               "$v: RSS of pid $pid grew by $grow kB ($rss0 -> $rss1 kB), limit $LIMIT_KB kB");
    }
    else {
        ok(0, "$v: could not read the RSS of the serving process");
    }
    $c->send_close(1000);
    my($code) = $c->expect_close(10);
    is($code, 1000, "$v: closes cleanly");
}
