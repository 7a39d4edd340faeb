# Addressing: every WebSocket joins conn:<id>, and user:<name> when it has
# a user (WebSocketUser's default, %{REMOTE_USER}, from Basic auth here).
# alice holds 3 sockets and bob 2, each spread over at least two children;
# carol 1; two sockets on /fanout have no user.  A POST to
# /publish/user:NAME reaches all and only NAME's sockets, each once; one to
# /publish/conn:ID exactly that socket, whichever child holds it.  The
# hello names the user and the per-user channel of WebSocketChannel
# "room-%{REMOTE_USER}", and a message alice sends goes to her sockets
# only.  ws and wss.
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

my $WAIT = 5;           # bound for a delivery
my $QUIET = 0.5;        # then nothing else may arrive

sub owners_of {
    my $all = shift;
    return map { $_->{user} // '-' } @$all;
}

# POST $body to $channel, then every socket must get exactly what
# $want->($socket) says (a list of payloads)
sub deliver_ok {
    my($v, $all, $channel, $body, $want, $name) = @_;
    my $r = WsChannel::post($v, '/publish/' . WsChannel::path_escape($channel), $body);
    is($r->{status}, 200, "$name: POST answered 200") or diag($r->{body});
    is($r->{json} && $r->{json}->{channel}, $channel, "$name: the answer names $channel");
    my @want = map { [$want->($_)] } @$all;
    my $got = WsChannel::collect_expect($all, [map { scalar @$_ } @want], $WAIT, $QUIET);
    my @wrong = grep { "@{ WsChannel::payloads($got->[$_]) }" ne "@{ $want[$_] }" } 0 .. $#$all;
    ok(!@wrong, "$name: exactly the addressed sockets got it, once each")
        or diag(join "\n", map { sprintf('%s (user %s, child %s): got [%s], want [%s]',
                                         $all->[$_]->{id}, $all->[$_]->{user} // '-', $all->[$_]->{pid},
                                         join(', ', @{ WsChannel::payloads($got->[$_]) }),
                                         join(', ', @{ $want[$_] })) } @wrong);
}

sub addressing_case {
    my $v = shift;

    my @alice = WsChannel::spread_subscribers($v, '/users', 3, 2, 40, user => 'alice');
    my @bob   = WsChannel::spread_subscribers($v, '/users', 2, 2, 40, user => 'bob');
    my @carol = (WsChannel::subscriber($v, '/users', user => 'carol'));
    my @anon  = WsChannel::spread_subscribers($v, '/fanout', 2, 2, 40);
    my @all = (@alice, @bob, @carol, @anon);
    note(join ' ', map { ($_->{user} // '-') . "=$_->{id}" } @all);

    for my $u (qw(alice bob carol)) {
        my @mine = grep { ($_->{user} // '') eq $u } @all;
        my @hello_ok = grep { "@{ $_->{channels} || [] }" eq "room-$u" } @mine;
        is(scalar @hello_ok, scalar @mine, "hello of each of ${u}'s sockets: user $u, channels [room-$u]")
            or diag($mine[0]->{hello_text});
    }
    ok(!grep({ defined $_->{user} } @anon), 'no user: "user":null in the hello');
    my %ids = map { $_->{id} => 1 } @all;
    is(scalar keys %ids, scalar @all, 'the connection ids are unique');
    my %a_pids = map { $_->{pid} => 1 } @alice;
    ok(keys(%a_pids) >= 2, "alice's sockets are in " . keys(%a_pids) . ' children');

    for my $u (qw(alice bob carol)) {
        deliver_ok($v, \@all, "user:$u", "for $u only ($v)",
                   sub { ($_[0]->{user} // '') eq $u ? ("for $u only ($v)") : () }, "user:$u");
    }
    deliver_ok($v, \@all, 'user:dave', 'nobody', sub { () }, 'user:dave (no such socket)');

    # one socket by its id: one of alice's, the last of bob's, a socket
    # with no user; in different children as far as they are
    for my $c ($alice[0], $bob[-1], $anon[-1]) {
        my $id = $c->{id};
        deliver_ok($v, \@all, "conn:$id", "only $id", sub { $_[0] == $c ? ("only $id") : () },
                   "conn:$id (child $c->{pid})");
    }
    deliver_ok($v, \@all, 'conn:1-999999', 'nobody', sub { () }, 'conn: of no socket');

    # binary stays binary on the way to a user
    my $bytes = "\x00\x01\xFE\xFF bin";
    my $r = WsChannel::post($v, '/publish/user:bob', $bytes, type => 'application/octet-stream');
    is($r->{status}, 200, 'binary POST to user:bob');
    my $got = WsChannel::collect_expect(\@bob, [1, 1], $WAIT, 0);
    ok(!grep({ !(@$_ == 1 && $_->[0]->{opcode} == BIN && $_->[0]->{payload} eq $bytes) } @$got),
       "both of bob's sockets got it as one binary message");

    # a message alice sends goes to room-alice: her sockets (the sender
    # too: WebSocketChannelEcho on), nobody else
    $alice[1]->send_text("alice says hi ($v)");
    my @want = map { ($_->{user} // '') eq 'alice' ? 1 : 0 } @all;
    $got = WsChannel::collect_expect(\@all, \@want, $WAIT, $QUIET);
    my @wrong = grep { @{ $got->[$_] } != $want[$_]
                       || ($want[$_] && $got->[$_]->[0]->{payload} ne "alice says hi ($v)") } 0 .. $#all;
    ok(!@wrong, "alice's message reaches her 3 sockets and nobody else")
        or diag(join ', ', map { "$all[$_]->{id}: " . scalar @{ $got->[$_] } } @wrong);

    # without credentials there is no socket at all
    my $c = WsTest->connect($v, '/users');
    is($c->status, 401, 'no credentials: 401');
    $c = WsTest->connect($v, '/users', headers => [WsChannel::basic_auth('alice', 'wrong')]);
    is($c->status, 401, 'a wrong password: 401');

    for my $s (@all) {
        $s->send_close(1000);
        $s->close;
    }
}

plan tests => 2;
WsTest::diag_to_stderr();

WsTest::run_cases(['user:NAME and conn:ID' => \&addressing_case]);
