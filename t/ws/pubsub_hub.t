# The hub process that carries messages between the children.
#  - SIGKILL (ws and wss): httpd keeps serving meanwhile (a GET, an open
#    echo socket, a new one); the parent starts a new hub within 2 s (a new
#    pid in DefaultRuntimeDir/mod_ws_hub.pid, alive, child of the parent);
#    subscribers in the publisher's child get every message all along;
#    subscribers in other children get messages again soon after (the hub
#    threads reconnect within ~250 ms; 3 s allowed); nobody gets anything
#    twice; the subscriptions made before the kill still hold.
#  - graceful restart (SIGUSR1): channel sockets end with close 1001; the
#    old children exit; there is a live hub; new sockets in several new
#    children get each other's messages and POSTed ones.
# Named to run after the other channel tests and before restart.t, which
# must be last.
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

my $HUB_BACK = 2;               # the issue's bound for a new hub
my $ACROSS_AGAIN = 3;           # delivery across children again, after that
my $SHUTDOWN = 3 + 1.5;         # WebSocketShutdownTimeout + slack (restart.t)
my $EXIT_WAIT = ($ENV{MOD_WS_DRIVER} // '') eq 'thread' ? 10 : 5;

sub ppid_of {
    my $pid = shift;
    open(my $fh, '<', "/proc/$pid/stat") or return 0;
    my $stat = <$fh>;
    close $fh;
    return $stat && $stat =~ /\)\s+\S\s+(\d+)/ ? $1 : 0;
}

# a live hub whose parent is $ppid, other than $not, within $timeout
sub wait_hub {
    my($ppid, $not, $timeout) = @_;
    my $deadline = time + $timeout;
    while (1) {
        my $h = WsTest::hub_pid();
        return $h if $h && $h != ($not // 0) && WsTest::pid_alive($h) && ppid_of($h) == $ppid;
        return 0 if time >= $deadline;
        sleep 0.02;
    }
}

sub echo_ok {
    my($c, $text) = @_;
    $c->send_text($text) or return 0;
    my $m = $c->read_message(5);
    return $m && !$m->{eof} && ($m->{payload} // '') eq $text;
}

sub hub_kill_case {
    my $v = shift;
    my $ppid = WsTest::server_pid();
    my $hub = wait_hub($ppid, undef, 5);
    ok($hub, "a hub process (pid $hub), child of the parent $ppid") or die "no hub\n";

    my $ch = "hub:$v";
    my @subs = WsChannel::spread_subscribers($v, '/ctl', 5, 2, 40);
    for my $s (@subs) {
        $s->send_text(qq({"action":"subscribe","channel":"$ch"}));
        my $m = $s->read_message(5);
        die "subscribe: no answer\n" unless $m && ($m->{payload} // '') =~ /"subscribed"/;
    }
    my $pub = $subs[0];
    my @local = grep { $_->{pid} == $pub->{pid} } @subs;
    my @remote = grep { $_->{pid} != $pub->{pid} } @subs;
    note("publisher in child $pub->{pid}; " . @local . ' subscribers there, ' . @remote . ' elsewhere');
    ok(@remote >= 1, 'subscribers in other children than the publisher');

    # everything each subscriber gets, to find duplicates at the end
    my @seen = map { {} } @subs;
    my @order = map { [] } @subs;
    my $on = sub {
        my($i, $f) = @_;
        $seen[$i]->{ $f->{payload} }++;
        push @{ $order[$i] }, $f->{payload};
    };
    my $publish = sub { $pub->send_text(qq({"action":"publish","channel":"$ch","data":"$_[0]"})) };
    my $all_have = sub { my $p = shift; !grep { !$seen[$_]->{$p} } 0 .. $#subs };

    $publish->('before');
    WsChannel::pump(\@subs, 5, $on, sub { $all_have->('before') });
    ok($all_have->('before'), 'before the kill: every subscriber gets a message');

    my $echo = WsTest->connect($v, '/echo');
    is($echo->status, 101, 'an echo socket');

    kill KILL => $hub;
    my $t_kill = time;

    my $r = WsTest::http_request($v, 'GET', '/plain', timeout => 5);
    is($r->status, 200, 'hub killed: a GET is answered');
    ok(echo_ok($echo, 'still here'), 'hub killed: the open echo socket echoes');
    my $echo2 = WsTest->connect($v, '/echo');
    ok($echo2->status == 101 && echo_ok($echo2, 'new one'), 'hub killed: a new echo socket works');

    # publish all along: probe N every 50 ms
    my $n = 0;
    my $new_hub = 0;
    my $t_back;
    my $deadline = $t_kill + $HUB_BACK + $ACROSS_AGAIN;
    # remote sub index -> when its first probe came: the hub died before
    # probe 0, so any probe there went through the new hub
    my %first_remote;
    while (time < $deadline) {
        $publish->('probe ' . $n++);
        WsChannel::pump(\@subs, 0.05, $on);
        if (!$new_hub) {
            my $h = WsTest::hub_pid();
            if ($h && $h != $hub && WsTest::pid_alive($h) && ppid_of($h) == $ppid) {
                $new_hub = $h;
                $t_back = time;
            }
        }
        for my $i (0 .. $#subs) {
            next if $subs[$i]->{pid} == $pub->{pid} || exists $first_remote{$i};
            $first_remote{$i} = time if grep { /^probe / } @{ $order[$i] };
        }
        last if $new_hub && keys(%first_remote) == @remote;
    }
    ok($new_hub, sprintf('a new hub (pid %s) within %d s (%.2f s after the kill)',
                         $new_hub || 'none', $HUB_BACK, ($t_back // time) - $t_kill))
        or diag("pid file says " . WsTest::hub_pid());
    ok($t_back && $t_back - $t_kill <= $HUB_BACK, "... within $HUB_BACK s");
    is(scalar keys %first_remote, scalar @remote,
       sprintf('messages reach the other children again (%s s after the new hub)',
               join(' ', map { sprintf '%+.2f', $_ - ($t_back // 0) } sort values %first_remote)));

    # the publisher's own child never missed one
    my @want = map { "probe $_" } 0 .. $n - 1;
    for my $s (grep { $_ != $pub } @local) {
        my $i = (grep { $subs[$_] == $s } 0 .. $#subs)[0];
        WsChannel::pump(\@subs, 2, $on, sub { $seen[$i]->{"probe " . ($n - 1)} });
        is_deeply([grep { /^probe/ } @{ $order[$i] }], \@want,
                  "subscriber $s->{id} in the publisher's child got all $n probes in order");
    }

    # one more, to everybody; then nobody has anything twice
    $publish->('final');
    WsChannel::pump(\@subs, 5, $on, sub { $all_have->('final') });
    ok($all_have->('final'), 'a last message reaches every subscriber');
    my $post = WsChannel::post($v, '/publish/' . WsChannel::path_escape($ch), 'posted');
    is($post->{status}, 200, 'a POST after the restart of the hub');
    WsChannel::pump(\@subs, 5, $on, sub { $all_have->('posted') });
    ok($all_have->('posted'), '... reaches every subscriber');
    WsChannel::pump(\@subs, 0.3, $on);
    my @twice;
    for my $i (0 .. $#subs) {
        push @twice, map { "$subs[$i]->{id}: '$_' x $seen[$i]->{$_}" }
            grep { $seen[$i]->{$_} > 1 } sort keys %{ $seen[$i] };
    }
    ok(!@twice, 'no message delivered twice') or diag(join "\n", @twice[0 .. ($#twice > 9 ? 9 : $#twice)]);

    $_->send_close(1000) for @subs, $echo, $echo2;
    $_->close for @subs, $echo, $echo2;
}

sub open_subs {
    my($v, $path, $n, $min) = @_;
    my($err, @subs);
    my $deadline = time + 10;
    while (time < $deadline) {
        @subs = eval { WsChannel::spread_subscribers($v, $path, $n, $min, 40) };
        return @subs if @subs;
        $err = $@;
        sleep 0.2;
    }
    die $err;
}

sub graceful_restart {
    my $ppid = WsTest::server_pid();
    ok($ppid && WsTest::pid_alive($ppid), "server running (pid $ppid)") or return;
    my $old_hub = wait_hub($ppid, undef, 5);
    my @old = WsTest::child_pids($ppid);
    my @before = map { open_subs($_, '/fanout', 2, 1) } WsTest::variants();

    kill USR1 => $ppid;
    my $t = time;
    for my $s (@before) {
        my $left = $t + $SHUTDOWN - time;
        my($code) = $s->expect_close($left > 0.01 ? $left : 0.01);
        is($code, 1001, "$s->{variant} subscriber $s->{id}: close 1001");
        $s->send_close(1001);
    }
    my @alive = WsTest::wait_pids_gone($t + $EXIT_WAIT - time, @old);
    is("@alive", '', "old children (@old) exited within $EXIT_WAIT s");
    my $hub = wait_hub($ppid, undef, 5);
    ok($hub, "a hub (pid $hub; before the restart $old_hub) serves the new generation");

    for my $v (WsTest::variants()) {
        my @subs = open_subs($v, '/fanout', 4, 2);
        my %pids = map { $_->{pid} => 1 } @subs;
        ok(!grep({ my $p = $_; grep { $_ == $p } @old } keys %pids),
           "$v: new subscribers in new children (" . join(' ', sort keys %pids) . ')');
        $subs[0]->send_text("after restart $v");
        my $got = WsChannel::collect_expect(\@subs, [(1) x @subs], 5, 0.3);
        ok(!grep({ "@{ WsChannel::payloads($_) }" ne "after restart $v" } @$got),
           "$v: a message from child $subs[0]->{pid} reaches every subscriber once");
        my $r = WsChannel::post($v, '/publish/fanout', "posted $v");
        is($r->{status}, 200, "$v: POST");
        $got = WsChannel::collect_expect(\@subs, [(1) x @subs], 5, 0.3);
        ok(!grep({ "@{ WsChannel::payloads($_) }" ne "posted $v" } @$got),
           "$v: the POSTed message reaches every subscriber once");
        $_->send_close(1000) for @subs;
        $_->close for @subs;
    }
}

plan tests => 3;
WsTest::diag_to_stderr();

WsTest::run_cases(['SIGKILL the hub' => \&hub_kill_case]);
subtest 'graceful restart (SIGUSR1)' => sub {
    my $ok = eval { graceful_restart(); 1 };
    ok(0, 'no exception') or diag($@) unless $ok;
    done_testing();
};
