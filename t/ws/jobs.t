# Blocking handler work runs on the child's job threads, not on the thread
# that serves the connection (with the reactor, the one thread that serves
# every WebSocket of the child).  The third-party handler "test-slow"
# (t/modules/mod_ws_test.c, loaded after mod_ws like any module using
# mod_ws.h) sleeps in a job for each message, then answers:
#  - one connection's answers keep the order of its messages, whatever
#    each job's duration;
#  - meanwhile an echo WebSocket in the same child answers within 100 ms.
# ws and wss.
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib "$FindBin::Bin/../lib";

use Apache::Test qw(-withtestmore);
use Test::More import => ["!plan"];
use Time::HiRes qw(time);
use WsTest;

plan tests => 2 * 5;
WsTest::diag_to_stderr();

sub open_ws {
    my($v, $path) = @_;
    my $c = WsTest->connect($v, $path);
    die "$v $path: handshake failed (" . ($c->status_line // '') . ")\n"
        unless $c->status == 101;
    return $c;
}

for my $v (WsTest::variants()) {
    # a slow socket and an echo socket served by the same child: keep
    # opening both kinds (all kept open, so the MPM cannot hand every new
    # one to a single child) until two of them share a child
    my(@slow, @echo, $slow, $echo);
    for (1 .. 20) {
        push @slow, open_ws($v, '/slowjob');
        push @echo, open_ws($v, '/echo');
        my %slow_at = map { ($_->serving_pid => $_) } @slow;
        ($echo) = grep { $slow_at{$_->serving_pid} } @echo;
        if ($echo) {
            $slow = $slow_at{$echo->serving_pid};
            last;
        }
    }
    ok($echo, "$v: a slow socket and an echo socket in the same child"
              . ($echo ? ' (' . $echo->serving_pid . ')' : ''));
    $slow ||= $slow[0];
    $_->close for grep { $_ != $slow && (!$echo || $_ != $echo) } @slow, @echo;

    # 1.5 s of blocking work in all, in jobs of different lengths
    my @sleeps = (500, 10, 400, 0, 300, 20, 250);
    $slow->send_text("$sleeps[$_]:answer $_") for 0 .. $#sleeps;

    my($max, $n) = (0, 0);
    if ($echo) {
        my $until = time + 1.2;
        while (time < $until) {
            my $t0 = time;
            $echo->send_text("ping $n");
            my $m = $echo->read_message(5);
            last unless $m && ($m->{payload} // '') eq "ping $n";
            my $dt = (time - $t0) * 1000;
            $max = $dt if $dt > $max;
            $n++;
        }
    }
    ok($n >= 10, "$v: the echo socket kept answering while jobs blocked ($n round trips)");
    cmp_ok($max, '<', 100, sprintf("$v: slowest echo round trip %.1f ms (< 100 ms)", $max));

    my @got;
    while (@got < @sleeps) {
        my $m = $slow->read_message(10);
        last unless $m && !$m->{eof} && $m->{opcode} == 1;
        push @got, $m->{payload};
    }
    is_deeply(\@got, [ map { "answer $_" } 0 .. $#sleeps ],
              "$v: every job's answer, in the order of the messages");

    $slow->send_close(1000);
    my($code) = $slow->expect_close(10);
    is($code, 1000, "$v: the slow socket closes normally");
    $echo->close if $echo;
}
