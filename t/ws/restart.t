# Graceful restart (SIGUSR1), graceful stop (SIGWINCH) and stop (SIGTERM)
# with open ws and wss sockets.  Graceful: each socket gets close 1001 and
# its TCP connection ends within WebSocketShutdownTimeout (3 s in
# extra.conf.in, plus 1.5 s of slack for signal delivery and scheduling);
# the old child processes exit; afterwards new connections work.
#
# Stop (SIGTERM) is checked the same way with the reactor driver (the
# default on the event MPM): it closes its sockets with 1001 from
# child_stopping.  A WebSocket on a worker thread (MOD_WS_DRIVER=thread,
# i.e. WebSocketDriver thread) cannot: the MPM closes busy workers' sockets
# before it runs that hook, so there only a prompt end is checked.
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib "$FindBin::Bin/../lib";

use Apache::Test qw(-withtestmore);
use Test::More import => ["!plan"];
use Time::HiRes qw(time sleep);
use WsTest;

use constant { CONT => 0, TEXT => 1, BIN => 2, CLOSE => 8, PING => 9, PONG => 10 };

my $BOUND = 3;          # WebSocketShutdownTimeout in extra.conf.in
my $SLACK = 1.5;
# old children (and, on a stop, the parent) must be gone by then: within
# WebSocketShutdownTimeout + 2 s on the reactor; a worker thread's socket
# also goes through httpd's own lingering close, so allow more there
my $EXIT_WAIT = ($ENV{MOD_WS_DRIVER} // '') eq 'thread' ? 10 : $BOUND + 2;

plan tests => 3;
WsTest::diag_to_stderr();

my $error_log = WsTest::t_logs() . '/error_log';
my $log_start = -s $error_log || 0;

# make sure a server is running when this file ends, whatever happened
END {
    my $pid = WsTest::server_pid();
    unless ($pid && WsTest::pid_alive($pid)) {
        diag('restarting the test server for the harness');
        WsTest::start_server(30);
    }
}

# four open sockets: ws and wss, each on /echo and /quiet, echo checked
sub open_set {
    my @set;
    for my $v (WsTest::variants()) {
        for my $path ('/echo', '/quiet') {
            my $c = WsTest->connect($v, $path);
            die "$v $path: handshake failed (" . ($c->status_line // '') . ")\n"
                unless $c->status == 101;
            $c->send_text("hello $v $path");
            my $m = $c->read_message(10);
            die "$v $path: no echo\n" unless $m && ($m->{payload} // '') eq "hello $v $path";
            $c->{name} = "$v $path";
            push @set, $c;
        }
    }
    return @set;
}

# every socket: close 1001 and EOF before the shared deadline.  Sockets on
# /echo answer the close like a browser would; those on /quiet do not, so
# the server has to drop them on its own within the bound.
sub check_going_away {
    my($t_signal, @set) = @_;
    my $deadline = $t_signal + $BOUND + $SLACK;
    for my $c (@set) {
        my $left = $deadline - time;
        $left = 0.01 if $left < 0.01;
        my($code, $reason, $f) = $c->expect_close($left);
        ok($f, "$c->{name}: close frame")
            or diag($c->is_eof
                    ? sprintf('TCP %s without a close frame, %.2f s after the signal',
                              $c->{reset} ? 'reset' : 'closed', time - $t_signal)
                    : 'none before the deadline');
        is($code, 1001, "$c->{name}: close code 1001");
        $c->send_close(1001) if $f && $c->{name} =~ m{/echo};
        $left = $deadline - time;
        $left = 0.01 if $left < 0.01;
        ok($c->wait_eof($left),
           sprintf("$c->{name}: connection ended within %.1f s of the signal", $BOUND + $SLACK));
    }
}

sub works_again {
    my $what = shift;
    for my $v (WsTest::variants()) {
        my($ok, $err) = (0, '');
        my $deadline = time + 10;
        while (!$ok && time < $deadline) {
            $ok = eval {
                my $c = WsTest->connect($v, '/echo', timeout => 3);
                die "status " . $c->status . "\n" unless $c->status == 101;
                $c->send_text("after $what");
                my $m = $c->read_message(5);
                die "no echo\n" unless $m && ($m->{payload} // '') eq "after $what";
                $c->send_close(1000);
                $c->expect_close(5);
                1;
            };
            $err = $@ unless $ok;
            sleep 0.2 unless $ok;
        }
        ok($ok, "$v: a new WebSocket works after $what") or diag($err);
    }
}

subtest 'graceful restart (SIGUSR1)' => sub {
    my $ppid = WsTest::server_pid();
    ok($ppid && WsTest::pid_alive($ppid), "server running (pid $ppid)") or return done_testing();
    my @set = eval { open_set() };
    ok(@set == 4, 'four WebSockets open') or return done_testing(diag($@));
    my @old = WsTest::child_pids($ppid);
    my @serving = map { $_->serving_pid } @set;
    ok(!grep({ !$_ } @serving), "serving processes found (@serving)");

    kill USR1 => $ppid;
    my $t = time;
    check_going_away($t, @set);

    my @alive = WsTest::wait_pids_gone($t + $EXIT_WAIT - time, @old);
    is("@alive", '', "old children (@old) exited within $EXIT_WAIT s");
    ok(WsTest::pid_alive($ppid), 'parent still running');
    my @new = WsTest::child_pids($ppid);
    my %old = map { $_ => 1 } @old;
    ok(@new && !grep({ $old{$_} } @new), "new generation of children (@new)");
    works_again('the graceful restart');
    done_testing();
};

subtest 'graceful stop (SIGWINCH)' => sub {
    my $ppid = WsTest::server_pid();
    ok($ppid && WsTest::pid_alive($ppid), "server running (pid $ppid)") or return done_testing();
    my @set = eval { open_set() };
    ok(@set == 4, 'four WebSockets open') or return done_testing(diag($@));
    my @procs = ($ppid, WsTest::child_pids($ppid));

    kill WINCH => $ppid;
    my $t = time;
    check_going_away($t, @set);

    my @alive = WsTest::wait_pids_gone($t + $EXIT_WAIT - time, @procs);
    is("@alive", '', "all server processes (@procs) exited within $EXIT_WAIT s");
    my $pid = WsTest::start_server(30);
    ok($pid, "server started again (pid $pid)");
    works_again('a graceful stop and start');
    done_testing();
};

subtest 'stop (SIGTERM)' => sub {
    my $ppid = WsTest::server_pid();
    ok($ppid && WsTest::pid_alive($ppid), "server running (pid $ppid)") or return done_testing();
    my @set = eval { open_set() };
    ok(@set == 4, 'four WebSockets open') or return done_testing(diag($@));
    my @procs = ($ppid, WsTest::child_pids($ppid));

    kill TERM => $ppid;
    my $t = time;
    if (($ENV{MOD_WS_DRIVER} // '') eq 'thread') {
        for my $c (@set) {
            my $left = $t + $BOUND + $SLACK - time;
            $left = 0.01 if $left < 0.01;
            ok($c->wait_eof($left),
               sprintf("$c->{name}: connection ended within %.1f s of the signal", $BOUND + $SLACK));
        }
    }
    else {
        check_going_away($t, @set);
    }

    my @alive = WsTest::wait_pids_gone($t + $EXIT_WAIT - time, @procs);
    is("@alive", '', "all server processes (@procs) exited within $EXIT_WAIT s");

    # no child crashed meanwhile
    my $new_log = '';
    if (open(my $fh, '<', $error_log)) {
        seek($fh, $log_start, 0);
        local $/;
        $new_log = <$fh> // '';
        close $fh;
    }
    my @crash = grep { /exit signal|Segmentation fault|still did not exit|sending a SIGKILL/ } split /\n/, $new_log;
    is(scalar(@crash), 0, 'no child crashed or had to be killed (error_log)')
        or diag(join "\n", @crash);

    my $pid = WsTest::start_server(30);
    ok($pid, "server started again for the harness (pid $pid)");
    works_again('a stop and start');
    done_testing();
};
