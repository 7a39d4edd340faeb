# A third-party handler on the channel API (t/modules/mod_ws_test.c,
# "test-rooms lobby-3p", only mod_ws.h): at open it has joined lobby-3p and
# says "id ID USER" (ws_conn_id, ws_conn_user from Basic auth); its data
# goes to the lobby for everybody but the sender (ws_conn_publish with
# WS_PUBLISH_NOT_SELF); join:/leave: (ws_conn_subscribe/unsubscribe), to:
# (ws_publish on the connection's thread) and job: (ws_publish from a job
# thread) reach sockets in other children; a POST to /publish reaches a
# room the handler joined, and conn:ID its socket.  ws and wss.
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib "$FindBin::Bin/../lib";

use Apache::Test qw(-withtestmore);
use Test::More import => ["!plan"];
use Time::HiRes qw(time sleep);
use WsTest;
use WsChannel;

use constant { TEXT => 1 };

my $QUIET = 0.5;

sub open_rooms {
    my($v, $user) = @_;
    my $c = WsChannel::subscriber($v, '/rooms', user => $user, hello => 0);
    my $m = $c->read_message(5);
    die "$v /rooms: no id message\n" unless $m && ($m->{payload} // '') =~ /^id ((\d+)-\d+) (\S+)$/;
    @$c{qw(id pid user)} = ($1, $2, $3);
    return $c;
}

sub next_is {
    my($c, $want, $name) = @_;
    my $m = $c->read_message(5);
    is($m && !$m->{eof} && defined $m->{payload} ? $m->{payload} : undef, $want, $name);
}

sub silent {
    my($c, $name) = @_;
    my $m = $c->read_message($QUIET);
    ok(!$m, $name) or diag('got ' . ($m->{eof} ? 'eof' : $m->{payload}));
}

sub rooms_case {
    my $v = shift;
    # alice and bob in different children, as far as the tries allow
    my $a = open_rooms($v, 'alice');
    my $b;
    for (1 .. 20) {
        $b = open_rooms($v, 'bob');
        last if $b->{pid} != $a->{pid};
    }
    note("alice $a->{id}, bob $b->{id}");
    is($a->{user}, 'alice', 'ws_conn_user: alice (Basic auth)');
    is($b->{user}, 'bob', 'ws_conn_user: bob');
    isnt($a->{id}, $b->{id}, 'ws_conn_id: two ids');
    is($a->{pid}, $a->serving_pid, "the id names the serving child ($a->{pid})");

    $a->send_text("hello lobby $v");
    next_is($b, "hello lobby $v", 'ws_conn_publish: bob gets what alice says in the lobby');
    silent($a, 'WS_PUBLISH_NOT_SELF: alice does not');

    $a->send_text("join:room:3p-$v");
    next_is($a, "joined room:3p-$v", 'ws_conn_subscribe');
    $b->send_text("to:room:3p-$v:from bob's thread");
    next_is($a, "from bob's thread", 'ws_publish on the connection\'s thread reaches the room');
    $b->send_text("job:room:3p-$v:from a job thread");
    next_is($b, 'published', 'the job published');
    next_is($a, 'from a job thread', 'ws_publish from a job thread reaches the room');

    my $r = WsChannel::post($v, "/publish/room:3p-$v", 'posted');
    is($r->{status}, 200, 'POST to the room');
    next_is($a, 'posted', 'the POST reaches the handler\'s subscription');
    silent($b, 'bob, not in the room, gets none of it');

    $b->send_text("to:conn:$a->{id}:just alice");
    next_is($a, 'just alice', 'ws_publish to conn:ID');
    $b->send_text("to:user:alice:alice everywhere");
    next_is($a, 'alice everywhere', 'ws_publish to user:alice');
    $b->send_text('to:bad name:x');
    like($b->read_message(5)->{payload} // '', qr/^error \d+$/, 'ws_publish: a bad channel name is an error');

    $a->send_text("leave:room:3p-$v");
    next_is($a, "left room:3p-$v", 'ws_conn_unsubscribe');
    $b->send_text("to:room:3p-$v:too late");
    silent($a, 'nothing after leaving');

    for my $c ($a, $b) {
        $c->send_close(1000);
        my($code) = $c->expect_close(5);
        is($code, 1000, 'close 1000 echoed');
    }
}

plan tests => 2;
WsTest::diag_to_stderr();

WsTest::run_cases(['third-party handler on the channel API' => \&rooms_case]);
