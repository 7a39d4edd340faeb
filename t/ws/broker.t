# WebSocketBroker redis://: channel messages between servers.  The test
# starts its own redis-server on a free 127.0.0.1 port and two private
# httpds (t/lib/WsPrivate.pm) that share it, then shows:
#   - a message published on either server reaches every subscriber on
#     both, exactly once, in each publisher's order (WebSocket publishers
#     and POSTs to the publish endpoint);
#   - conn:<id> of a socket on server A, published on server B, reaches
#     that socket only;
#   - with Redis stopped both servers keep serving, and a message stays on
#     the server where it was published; once Redis is back, messages
#     cross again without restarting httpd.
# Everything started here is stopped by PID at the end.  With
# MOD_WS_DRIVER=thread the sockets are on worker threads.
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib "$FindBin::Bin/../lib";

use Apache::Test qw(-withtestmore);
use Test::More import => ["!plan"];
use HTTP::Tiny ();
use IO::Socket::INET ();
use POSIX ();
use Time::HiRes qw(time sleep);
use WsPrivate;
use WsTest;

use constant { TEXT => 1 };

my $REDIS = '/usr/bin/redis-server';
my $MSGS = 50;
my $DRIVER = ($ENV{MOD_WS_DRIVER} // '') eq 'thread'
    ? 'WebSocketDriver thread' : '';

if (my $why = WsPrivate::unusable()) {
    plan skip_all => $why;
}
plan tests => 13;

# redis-server is part of the suite's dependencies (build/check installs
# it): without it this is a failure, not a skip.
ok(-x $REDIS, "$REDIS is installed") or BAIL_OUT("redis-server missing (Debian: redis-server)");

my $rport = WsPrivate::free_port();
my $rdir = WsTest::t_logs() . "/broker.$$/redis";
system('mkdir', '-p', $rdir);
my $redis_pid;

sub redis_start {
    $redis_pid = fork;
    die "fork: $!\n" unless defined $redis_pid;
    if (!$redis_pid) {
        open(STDIN, '<', '/dev/null');
        open(STDOUT, '>>', "$rdir/redis.log");
        open(STDERR, '>&', \*STDOUT);
        exec($REDIS, '--port', $rport, '--bind', '127.0.0.1', '--save', '',
             '--appendonly', 'no', '--daemonize', 'no', '--dir', $rdir)
            or POSIX::_exit(127);
    }
    my $deadline = time + 10;
    while (time < $deadline) {
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                      PeerPort => $rport, Timeout => 1);
        if ($s) { close $s; return 1 }
        sleep 0.1;
    }
    return 0;
}

sub redis_stop {
    return unless $redis_pid;
    kill TERM => $redis_pid;
    waitpid($redis_pid, 0);
    $redis_pid = undef;
}

END { redis_stop() }

ok(redis_start(), "redis-server on 127.0.0.1:$rport");

my $body = <<"EOT";
LogLevel warn ws:info
WebSocketBroker redis://127.0.0.1:$rport/modws-test-$$
<Location /chat>
    WebSocketHandler channel
    WebSocketChannel chat
    WebSocketChannelControl on
    $DRIVER
</Location>
<Location /publish>
    SetHandler websocket-publish
</Location>
EOT
my %srv = map { $_ => WsPrivate->new('broker', tag => $_, body => $body) } qw(A B);
my $up = 1;
for my $n (qw(A B)) {
    my($pid, $out, $rc) = $srv{$n}->start;
    $up &&= $pid;
    diag("$n: exit $rc: $out\n" . $srv{$n}->error_log) unless $pid;
}
ok($up, 'two httpds started');

# both hubs have both Redis links
my $deadline = time + 10;
my $linked = sub {
    2 == grep { my @l = $srv{$_}->error_log =~ /WS00131:/g; @l >= 2 } qw(A B)
};
sleep 0.1 while time < $deadline && !$linked->();
ok($linked->(), 'both hubs connected to Redis (WS00131)');

sub subscriber {
    my $n = shift;
    my $c = WsTest->connect('ws', '/chat', port => $srv{$n}->port);
    return undef unless $c->status == 101;
    my $hello = $c->read_message(5);
    return undef unless $hello && $hello->{payload} =~ /"id":"([^"]+)"/;
    $c->{id} = $1;
    return $c;
}

sub post {
    my($n, $channel, $data) = @_;
    my $r = HTTP::Tiny->new(timeout => 10)->post(
        'http://127.0.0.1:' . $srv{$n}->port . "/publish/$channel",
        { content => $data,
          headers => { 'Content-Type' => 'text/plain; charset=utf-8' } });
    return $r->{status};
}

# the text messages a socket gets: up to $want of them (all there are
# when undef) within $t seconds, then whatever else comes within 0.3 s (so
# an extra copy is seen)
sub drain {
    my($c, $t, $want) = @_;
    my @got;
    my $deadline = time + $t;
    while (!defined $want || @got < $want) {
        my $left = $deadline - time;
        last if $left <= 0;
        my $m = $c->read_message($left) or last;
        last if $m->{eof} || !defined $m->{opcode} || $m->{opcode} != TEXT;
        push @got, $m->{payload};
    }
    while (my $m = $c->read_message(0.3)) {
        last if $m->{eof} || !defined $m->{opcode} || $m->{opcode} != TEXT;
        push @got, $m->{payload};
    }
    return @got;
}

my %subs = map { my $n = $_; $n => [ map { subscriber($n) } 1 .. 3 ] } qw(A B);
my @all = (@{ $subs{A} }, @{ $subs{B} });
is(scalar(grep { defined } @all), 6, 'three subscribers on each server');

# one WebSocket publisher on each server, and POSTs to A
my %pub = map { $_ => subscriber($_) } qw(A B);
for my $i (1 .. $MSGS) {
    $pub{A}->send_text("A:$i");
    $pub{B}->send_text("B:$i");
}
for my $i (1 .. 10) {
    post('A', 'chat', "P:$i") == 200 or last;
}
my $ok = 1;
for my $c (@all) {
    my @got = drain($c, 10, 2 * $MSGS + 10);
    my %seen;
    $seen{$_}++ for @got;
    my @want = ((map { "A:$_" } 1 .. $MSGS), (map { "B:$_" } 1 .. $MSGS),
                (map { "P:$_" } 1 .. 10));
    my $once = @got == @want && !grep { ($seen{$_} // 0) != 1 } @want;
    my $order = 1;
    for my $p (qw(A B P)) {
        my @seq = map { /^$p:(\d+)$/ ? $1 : () } @got;
        $order &&= join(',', @seq) eq join(',', sort { $a <=> $b } @seq);
    }
    $ok &&= $once && $order;
    diag("$c->{id}: " . scalar(@got) . " messages, once=$once order=$order")
        unless $once && $order;
}
ok($ok, 'every subscriber on both servers got every message once, in each publisher\'s order');

# conn:<id> of a socket on A, published on B
my $target = $subs{A}[1];
is(post('B', "conn:$target->{id}", 'just you'), 200, 'POST conn:<id> to the other server');
my @hit = grep { my @g = drain($_, $_ == $target ? 5 : 0, 1);
                 grep { $_ eq 'just you' } @g } @all;
is_deeply([map { $_->{id} } @hit], [$target->{id}], 'exactly that socket got it');

# Redis goes away: each server on its own
redis_stop();
sleep 0.5;
is(post('A', 'chat', 'alone'), 200, 'with Redis stopped, a publish still answers 200');
my $a_got = grep { grep { $_ eq 'alone' } drain($_, 5, 1) } @{ $subs{A} };
my $b_got = grep { grep { $_ eq 'alone' } drain($_, 0.5, 1) } @{ $subs{B} };
ok($a_got == 3 && $b_got == 0,
   "it reached the publishing server's subscribers only ($a_got on A, $b_got on B)");

# Redis is back: messages cross again (the hubs retry every second)
ok(redis_start(), 'redis-server started again');
my $crossed = 0;
$deadline = time + 15;
my $probe = 0;
while (!$crossed && time < $deadline) {
    ++$probe;
    post('A', 'chat', "probe:$probe");
    $crossed = grep { /^probe:/ } drain($subs{B}[0], 1, 1);
}
ok($crossed, "after Redis came back, a message from A reached B again ($probe tries)");

$_->close for @all, values %pub;
my $stopped = 1;
$stopped &&= $srv{$_}->stop for qw(A B);
ok($stopped, 'both httpds stopped, every process gone');
redis_stop();
WsPrivate->cleanup('broker') if Test::More->builder->is_passing;
