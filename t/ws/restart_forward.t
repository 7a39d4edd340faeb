# Graceful restart (SIGUSR1) while forward sockets wait on a backend that
# hangs (15 s, past the shutdown bound but within WebSocketForwardTimeout):
# the child's stop fails their requests at once, so each socket still gets
# close 1001 within WebSocketShutdownTimeout (3 s) and the old children
# exit, instead of waiting for the backend.  Runs after restart.t (name
# order), with the server it leaves running.
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib "$FindBin::Bin/../lib";

use Apache::Test qw(-withtestmore);
use Test::More import => ["!plan"];
use Time::HiRes qw(time sleep);
use WsTest;
use FwdBackend;

my $BOUND = 3;          # WebSocketShutdownTimeout in extra.conf.in
my $SLACK = 1.5;
my $EXIT_WAIT = ($ENV{MOD_WS_DRIVER} // '') eq 'thread' ? 10 : $BOUND + 2;

plan tests => 4;
WsTest::diag_to_stderr();
FwdBackend::start();

my $ppid = WsTest::server_pid();
ok($ppid && WsTest::pid_alive($ppid), "server running (pid $ppid)");

my @set;
for my $v (WsTest::variants()) {
    my $c = WsTest->connect($v, '/fwdecho');
    die "$v: handshake failed (" . ($c->status_line // '') . ")\n" unless $c->status == 101;
    $c->send_text('ready?');
    my $m = $c->read_message(10);
    die "$v: no answer\n" unless $m && ($m->{payload} // '') eq 'ready?';
    $c->send_text('hang');
    $c->{name} = $v;
    push @set, $c;
}
my @old = WsTest::child_pids($ppid);
sleep 0.5;              # the requests reach the backend and hang there

kill USR1 => $ppid;
my $t = time;
my $deadline = $t + $BOUND + $SLACK;
my $closed = 0;
for my $c (@set) {
    my $left = $deadline - time;
    $left = 0.01 if $left < 0.01;
    my($code) = $c->expect_close($left);
    $c->send_close(1001) if defined $code;
    $closed++ if defined $code && $code == 1001;
}
is($closed, scalar @set,
   sprintf('every forward socket got close 1001 within %.1f s of the signal', $BOUND + $SLACK));
my @alive = WsTest::wait_pids_gone($t + $EXIT_WAIT - time, @old);
is("@alive", '', "old children (@old) exited within $EXIT_WAIT s, not waiting for the backend");

my $ok = 0;
for (1 .. 50) {
    $ok = eval {
        my $c = WsTest->connect('ws', '/fwdecho', timeout => 3);
        die "status\n" unless $c->status == 101;
        $c->send_text('after');
        my $m = $c->read_message(5);
        $c->close;
        $m && ($m->{payload} // '') eq 'after';
    };
    last if $ok;
    sleep 0.2;
}
ok($ok, 'a forward socket works after the restart');
