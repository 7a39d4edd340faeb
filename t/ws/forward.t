# The forward handler: WebSocket messages become HTTP POSTs to a backend,
# and its answers come back.  The test starts its own backend
# (t/forward/backend.py: HTTP/1.1 keep-alive, it counts the connections it
# accepts and logs every request) and a private httpd with one child
# (t/lib/WsPrivate.pm) whose locations forward to it, and shows:
#   - the documented headers and body reach the backend; answers come back
#     in order; binary stays binary, JSON is text; 204 sends nothing;
#   - WebSocket-Publish in an answer delivers it to a channel instead;
#   - WebSocketForwardEvents: open's answer is the first message, a
#     refused open closes with 1008, close reaches the backend with the code;
#   - a backend that is down, too slow, answers 500 or too much: a JSON
#     error, and the socket goes on;
#   - while a backend hangs, an echo socket of the same child answers every
#     round trip within 100 ms;
#   - 10 000 messages from 10 sockets use far fewer backend connections;
#   - a graceful restart closes a socket whose request hangs with 1001 and
#     the old child exits without waiting for the backend.
# With MOD_WS_DRIVER=thread the sockets are on worker threads.
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib "$FindBin::Bin/../lib";

use Apache::Test qw(-withtestmore);
use Test::More import => ["!plan"];
use HTTP::Tiny ();
use JSON::PP ();
use POSIX ();
use Time::HiRes qw(time sleep);
use WsPrivate;
use WsTest;

use constant { TEXT => 1, BIN => 2 };

my $DRIVER = ($ENV{MOD_WS_DRIVER} // '') eq 'thread'
    ? 'WebSocketDriver thread' : '';
my $SOCKETS = 10;
my $PER_SOCKET = 1000;
my $WINDOW = 32;            # messages in flight per socket
my $BOUND = 0.100;          # echo round trips while the backend hangs

if (my $why = WsPrivate::unusable()) {
    plan skip_all => $why;
}

# ---- the backend ----

my $bdir = WsTest::t_logs() . "/forward.$$";
system('mkdir', '-p', $bdir);
my $portfile = "$bdir/backend.port";
my $backend_pid = fork;
die "fork: $!\n" unless defined $backend_pid;
if (!$backend_pid) {
    open(STDIN, '<', '/dev/null');
    open(STDOUT, '>>', "$bdir/backend.log");
    open(STDERR, '>&', \*STDOUT);
    exec('python3', "$FindBin::Bin/../forward/backend.py", $portfile)
        or POSIX::_exit(127);
}
END {
    if ($backend_pid) {
        kill TERM => $backend_pid;
        waitpid($backend_pid, 0);
    }
}
my $deadline = time + 10;
sleep 0.05 while time < $deadline && !-s $portfile;
my $bport = WsPrivate::slurp($portfile) =~ /(\d+)/ ? $1 : 0;
my $down = WsPrivate::free_port();      # nothing listens there

my $http = HTTP::Tiny->new(timeout => 10);
sub backend_get {
    my $r = $http->get("http://127.0.0.1:$bport/$_[0]");
    return $r->{success} ? JSON::PP::decode_json($r->{content}) : undef;
}
sub backend_log { @{ backend_get('_log') || [] } }

# ---- the server ----

my $B = "http://127.0.0.1:$bport";
my %fwd = (
    echo    => "$B/echo",      nothing => "$B/nothing", fail => "$B/fail",
    down    => "http://127.0.0.1:$down/x",
    slow    => "$B/slow?s=3",  hang    => "$B/slow?s=20", big => "$B/big",
    refuse  => "$B/refuse",    welcome => "$B/welcome",   json => "$B/json",
    publish => "$B/publish?ch=room",     upper => "$B/upper",
    evil    => "$B/welcome",
);
my %extra = (
    echo    => 'WebSocketForwardEvents open close',
    slow    => 'WebSocketForwardTimeout 1',
    hang    => 'WebSocketForwardTimeout 15',
    refuse  => 'WebSocketForwardEvents open',
    welcome => "WebSocketForwardEvents open\n    WebSocketUser \"%{QUERY_STRING}\"",
    evil    => "WebSocketForwardEvents open\n    WebSocketUser \"%{unescape:%{QUERY_STRING}}\"",
);
my $body = "LogLevel warn ws:info\nWebSocketShutdownTimeout 2\n";
for my $n (sort keys %fwd) {
    $body .= "<Location /f/$n>\n    WebSocketHandler forward $fwd{$n}\n"
        . "    $DRIVER\n    " . ($extra{$n} // '') . "\n</Location>\n";
}
$body .= <<"EOT";
<Location /echo>
    WebSocketHandler echo
    $DRIVER
</Location>
<Location /room>
    WebSocketHandler channel
    WebSocketChannel room
    $DRIVER
</Location>
EOT
# one child: the echo socket shares it with the hanging backend request
my $mpm = <<'EOT';
<IfModule mpm_event_module>
    StartServers 1
    ServerLimit 1
    ThreadsPerChild 40
    MaxRequestWorkers 40
    MinSpareThreads 5
    MaxSpareThreads 40
    AsyncRequestWorkerFactor 100
    MaxConnectionsPerChild 0
</IfModule>
EOT

plan tests => 16;
ok($bport, "backend listening on 127.0.0.1:$bport")
    or diag(WsPrivate::slurp("$bdir/backend.log"));
my $srv = WsPrivate->new('forward', mpm => $mpm, body => $body);
my($pid, $out, $rc) = $srv->start;
ok($pid, 'private httpd started') or diag("exit $rc: $out\n" . $srv->error_log);

sub ws {
    my($path) = @_;
    my $c = WsTest->connect('ws', $path, port => $srv->port);
    die "$path: handshake answered " . $c->status . "\n" unless $c->status == 101;
    return $c;
}
sub msg {
    my($c, $t) = @_;
    my $m = $c->read_message($t // 10);
    return undef if !$m || $m->{eof} || !defined $m->{opcode} || $m->{opcode} >= 8;
    return $m;
}
sub error_of {
    my $m = shift or return '';
    my $j = eval { JSON::PP::decode_json($m->{payload}) } or return '';
    return $j->{error} // '';
}

subtest 'messages, headers, order, binary, close event' => sub {
    my $c = ws('/f/echo');
    $c->send_text("hello");
    $c->send_binary("\x00\x01\xff");
    my $m1 = msg($c);
    my $m2 = msg($c);
    is($m1 && $m1->{opcode}, TEXT, 'text answer is text');
    is($m1 && $m1->{payload}, 'hello', '... with the body');
    is($m2 && $m2->{opcode}, BIN, 'binary answer is binary');
    is($m2 && $m2->{payload}, "\x00\x01\xff", '... with the bytes');
    $c->send_text("n$_") for 1 .. 20;
    my @got = map { my $m = msg($c); $m ? $m->{payload} : '' } 1 .. 20;
    is_deeply(\@got, [map { "n$_" } 1 .. 20], '20 answers, in order');
    $c->send_close(1000, 'bye');
    $c->expect_close(5);
    my @mine;
    $deadline = time + 5;
    while (time < $deadline) {
        @mine = grep { $_->{path} eq '/echo' } backend_log();
        last if grep { $_->{event} eq 'close' } @mine;
        sleep 0.1;
    }
    my $id = $mine[0]{id} // '';
    like($id, qr/^\d+-\d+$/, "WebSocket-Connection-Id ($id)");
    is(scalar(grep { ($_->{id} // '') ne $id } @mine), 0, 'the same id on every request');
    is($mine[0]{event}, 'open', 'the open event first');
    is($mine[1]{event}, 'message', 'then messages');
    is($mine[1]{frame}, 'text', 'WebSocket-Frame: text');
    like($mine[1]{ctype}, qr{^text/plain}, 'text as text/plain');
    is($mine[1]{body}, 'hello', 'the message is the body');
    is($mine[2]{frame}, 'binary', 'WebSocket-Frame: binary');
    is($mine[2]{ctype}, 'application/octet-stream', 'binary as application/octet-stream');
    is($mine[2]{body}, "\x00\x01\xff", 'binary body intact');
    is($mine[-1]{event}, 'close', 'the close event last');
    is($mine[-1]{code}, '1000', 'WebSocket-Close-Code: 1000');
    done_testing();
};

subtest '204 sends nothing; JSON is text; upper' => sub {
    my $c = ws('/f/nothing');
    $c->send_text("x");
    is(msg($c, 0.7), undef, 'nothing for 204');
    ok($c->still_open, 'socket open');
    my $j = ws('/f/json');
    $j->send_binary("abc");
    my $m = msg($j);
    is($m && $m->{opcode}, TEXT, 'application/json comes back as text');
    my $v = $m ? eval { JSON::PP::decode_json($m->{payload}) } : undef;
    is($v && $v->{frame}, 'binary', 'the backend saw a binary frame');
    my $u = ws('/f/upper');
    $u->send_text("größer");
    $m = msg($u);
    is($m && $m->{payload}, "GRößER", 'UTF-8 text through the backend') ;
    done_testing();
};

subtest 'failures give a JSON error and the socket goes on' => sub {
    for my $case ([fail => qr/^backend answered 500$/],
                  [down => qr/^backend refused the connection$/],
                  [slow => qr/^backend timed out$/],
                  [big  => qr/^backend answer too large$/]) {
        my($n, $re) = @$case;
        my $c = ws("/f/$n");
        for my $try (1, 2) {
            $c->send_text("t$try");
            my $m = msg($c, 10);
            like(error_of($m), $re, "$n, message $try: " . ($m ? $m->{payload} : 'nothing'));
        }
        ok($c->still_open, "$n: socket still open");
    }
    like($srv->error_log, qr/WS00180: .*forward message to .*: backend answered 500/,
         'WS00180 logged');
    done_testing();
};

subtest 'open refused by the backend: close 1008' => sub {
    my $c = ws('/f/refuse');
    my($code, $reason) = $c->expect_close(10);
    is($code, 1008, 'close code 1008');
    is($reason, 'refused by backend', 'reason');
    done_testing();
};

subtest 'open answer is the first message; WebSocket-User, Cookie, X-Forwarded-For' => sub {
    my $c = WsTest->connect('ws', '/f/welcome?alice', port => $srv->port,
                            headers => [Cookie => 'session=abc123']);
    my $m = msg($c);
    is($m && $m->{payload}, 'welcome alice', 'the backend\'s answer to open');
    my @l = grep { $_->{path} eq '/welcome' } backend_log();
    is($l[-1]{user}, 'alice', 'WebSocket-User: alice');
    is($l[-1]{cookie}, 'session=abc123', 'the upgrade request\'s Cookie');
    is($l[-1]{xff}, '127.0.0.1', 'X-Forwarded-For: the client');
    # a user name with a line break adds no header of its own: it is not
    # sent at all
    my $evil = WsTest->connect('ws', '/f/evil?bob%0D%0AX-Evil:%201',
                               port => $srv->port);
    $m = msg($evil);
    @l = grep { $_->{path} eq '/welcome' } backend_log();
    is($m && $m->{payload}, 'welcome stranger', 'a user "bob\\r\\nX-Evil: 1": served, no name sent');
    is($l[-1]{evil}, undef, 'no X-Evil header reached the backend');
    is($l[-1]{user}, undef, 'nor a WebSocket-User');
    done_testing();
};

subtest 'WebSocket-Publish sends the answer to a channel' => sub {
    my $sub = ws('/room');
    my $c = ws('/f/publish');
    sleep 0.2;
    $c->send_text("to the room");
    my $m = msg($sub, 5);
    is($m && $m->{payload}, 'to the room', 'the subscriber got it');
    is(msg($c, 0.5), undef, 'the sender got nothing');
    done_testing();
};

# a backend that hangs holds its own socket only
my $hung = ws('/f/hang');
$hung->send_text("wait");
sleep 0.2;
my $echo = ws('/echo');
my($max, $over) = (0, 0);
for my $i (1 .. 30) {
    my $t0 = time;
    $echo->send_text("ping $i");
    my $m = msg($echo, 5);
    my $dt = time - $t0;
    $over++ if !$m || $m->{payload} ne "ping $i" || $dt > $BOUND;
    $max = $dt if $dt > $max;
    sleep 0.01;
}
is($over, 0, sprintf('while a backend hangs, 30 echo round trips each within 100 ms (max %.1f ms)', $max * 1000));
ok(!defined msg($hung, 0.1), 'the hanging request is still waiting');
$hung->close;

# connection reuse: 10 000 messages from 10 sockets
my $before = backend_get('_stats');
my @socks = map { ws('/f/echo') } 1 .. $SOCKETS;
my %sent = map { $_ => 0 } 0 .. $#socks;
my %got = map { $_ => 0 } 0 .. $#socks;
my $bad = 0;
for my $i (0 .. $#socks) {
    while ($sent{$i} < $WINDOW) { $socks[$i]->send_text("m" . $sent{$i}++) }
}
my $t0 = time;
$deadline = time + 120;
# the open event's answer is empty: only message answers come back
while (time < $deadline && grep { $got{$_} < $PER_SOCKET } keys %got) {
    for my $i (0 .. $#socks) {
        next if $got{$i} >= $PER_SOCKET;
        my $m = msg($socks[$i], 0.001) or next;
        $bad++ unless $m->{payload} eq "m$got{$i}";
        $got{$i}++;
        $socks[$i]->send_text("m" . $sent{$i}++) if $sent{$i} < $PER_SOCKET;
    }
}
my $secs = time - $t0;
my $total = 0;
$total += $got{$_} for keys %got;
is($total, $SOCKETS * $PER_SOCKET, "$total answers") or diag("bad order: $bad");
is($bad, 0, 'each socket\'s answers in order');
my $after = backend_get('_stats');
my $conns = ($after->{connections} // 0) - ($before->{connections} // 0);
my $reqs = ($after->{requests} // 0) - ($before->{requests} // 0);
ok($conns > 0 && $conns <= 4 * $SOCKETS,
   "$reqs backend requests over $conns TCP connections");
diag(sprintf("forward: %d messages in %.2f s (%.0f msg/s), %d backend connections",
             $total, $secs, $total / ($secs || 1), $conns));
$_->close for @socks;

# graceful restart while a backend hangs: the old child does not wait for it
my $waiting = ws('/f/hang');
$waiting->send_text("wait again");
sleep 0.3;
my @old = WsTest::child_pids($srv->pid);
kill USR1 => $srv->pid;
my $t1 = time;
my($code) = $waiting->expect_close(10);
is($code, 1001, sprintf('graceful restart: the waiting socket got 1001 after %.1f s', time - $t1));
my @left = WsTest::wait_pids_gone(10, @old);
ok(!@left, sprintf('the old child exited after %.1f s (WebSocketShutdownTimeout 2, '
                   . 'backend timeout 15)', time - $t1));

ok($srv->stop, 'stopped, every process gone');
system('rm', '-rf', $bdir) if Test::More->builder->is_passing;
WsPrivate->cleanup('forward') if Test::More->builder->is_passing;
