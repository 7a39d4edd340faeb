# The channel handler's own behaviour on one child or several:
#  - /ctl (WebSocketChannelControl on, WebSocketChannelAllow "room:*"):
#    hello; subscribe / unsubscribe / publish and their answers; every
#    error message, after which the socket still works; text that is not a
#    control message (not JSON, no "action", not an object) and binary
#    frames are data for the location's channel; the sender gets its own
#    message once (WebSocketChannelEcho on);
#  - /noecho (WebSocketChannelEcho off): everybody but the sender;
#  - /nochan (no WebSocketChannel): data is answered with an error;
#  - /plainchan (control off): no hello, and JSON is plain data.
# ws and wss.
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

my $QUIET = 0.5;

sub next_text {
    my($c, $t) = @_;
    my $m = $c->read_message(defined $t ? $t : 5);
    return undef unless $m && !$m->{eof} && defined $m->{opcode};
    return $m->{opcode} == TEXT ? $m->{payload} : "[opcode $m->{opcode}] $m->{payload}";
}

sub answer_is {
    my($c, $send, $want, $name) = @_;
    $c->send_text($send);
    my $got = next_text($c);
    my $gj = WsChannel::json_or_undef($got);
    is_deeply($gj, $want, $name) or diag("sent $send, got " . ($got // 'nothing'));
}

sub silent {
    my($c, $name) = @_;
    my $m = $c->read_message($QUIET);
    ok(!$m, "$name") or diag('got ' . ($m->{eof} ? 'eof' : substr($m->{payload} // '', 0, 80)));
}

sub control_case {
    my $v = shift;
    # two sockets in different children when the tries allow
    my($a, $b) = WsChannel::spread_subscribers($v, '/ctl', 2, 2, 20);
    note("a = $a->{id}, b = $b->{id}");
    is_deeply($a->{hello}, { event => 'hello', id => $a->{id}, user => undef, channels => ['ctl'] },
              'hello: event, id, user null, the location\'s channels');

    my $room = "room:$v";
    answer_is($a, qq({"action":"subscribe","channel":"$room"}),
              { event => 'subscribed', channel => $room }, 'subscribe');
    # b publishes to the room it is not in: a gets the data, b nothing
    $b->send_text(qq({"action":"publish","channel":"$room","data":"hi \xC3\xA9"}));
    is(next_text($a), "hi \xC3\xA9", 'control publish: the subscriber gets the data as text');
    silent($b, 'control publish: no acknowledgement, and nothing to a non-subscriber');

    # b joins too; with echo on its own publish comes back once
    answer_is($b, qq({"action":"subscribe","channel":"$room"}),
              { event => 'subscribed', channel => $room }, 'b subscribes');
    $b->send_text(qq({"action":"publish","channel":"$room","data":"both"}));
    is(next_text($a), 'both', 'publish to a room of two: a gets it');
    is(next_text($b), 'both', 'b (the sender, echo on) gets it');
    silent($b, 'once');

    answer_is($a, qq({"action":"unsubscribe","channel":"$room"}),
              { event => 'unsubscribed', channel => $room }, 'unsubscribe');
    $b->send_text(qq({"action":"publish","channel":"$room","data":"after"}));
    is(next_text($b), 'after', 'b still gets the room');
    silent($a, 'a, unsubscribed, does not');

    # errors; the socket stays open
    my @errors = (
        ['not an action', qq({"action":"subscribe"}), { error => 'bad control message' }],
        ['channel not a string', qq({"action":"subscribe","channel":5}), { error => 'bad control message' }],
        ['publish without data', qq({"action":"publish","channel":"$room"}), { error => 'bad control message' }],
        ['data not a string', qq({"action":"publish","channel":"$room","data":7}), { error => 'bad control message' }],
        ['unknown action', qq({"action":"dance","channel":"$room"}), { error => 'unknown action', action => 'dance' }],
        ['bad channel name', qq({"action":"subscribe","channel":"two words"}),
         { error => 'bad channel name', channel => 'two words' }],
        ['empty channel name', qq({"action":"subscribe","channel":""}),
         { error => 'bad channel name', channel => '' }],
        ['channel not allowed', qq({"action":"subscribe","channel":"secret"}),
         { error => 'channel not allowed', channel => 'secret' }],
        ['publish to a user', qq({"action":"publish","channel":"user:alice","data":"x"}),
         { error => 'channel not allowed', channel => 'user:alice' }],
        ['publish to a socket', qq({"action":"publish","channel":"conn:$b->{id}","data":"x"}),
         { error => 'channel not allowed', channel => "conn:$b->{id}" }],
    );
    for my $e (@errors) {
        answer_is($a, $e->[1], $e->[2], "error: $e->[0]");
    }
    silent($b, 'b got none of it');

    # the location's own channel is always allowed
    answer_is($a, qq({"action":"unsubscribe","channel":"ctl"}),
              { event => 'unsubscribed', channel => 'ctl' }, 'unsubscribe from the location\'s channel');
    answer_is($a, qq({"action":"subscribe","channel":"ctl"}),
              { event => 'subscribed', channel => 'ctl' }, '... and back');

    # data: not JSON, JSON without "action", JSON that is no object,
    # binary: all go to "ctl", the sender included
    for my $d ('plain text', '{"x":1', '{"x":1}', '{"action":5}', '["action","subscribe"]', '"action"') {
        $a->send_text($d);
        is(next_text($b), $d, "data '$d': the other subscriber gets it");
        is(next_text($a), $d, "data '$d': the sender too, once");
    }
    my $bytes = "\x00\x9F{\"action\":\"subscribe\"}";
    $a->send_binary($bytes);
    for my $c ([b => $b], [a => $a]) {
        my $m = $c->[1]->read_message(5);
        ok($m && defined $m->{opcode} && $m->{opcode} == BIN && $m->{payload} eq $bytes,
           "binary data stays binary: $c->[0]");
    }
    silent($a, 'nothing more for a');
    silent($b, 'nothing more for b');

    # echo off
    my($x, $y) = WsChannel::spread_subscribers($v, '/noecho', 2, 2, 20);
    $x->send_text('from x');
    is(next_text($y), 'from x', 'echo off: the other subscriber gets it');
    silent($x, 'echo off: the sender does not');
    $x->send_text(qq({"action":"publish","channel":"noecho","data":"via control"}));
    is(next_text($y), 'via control', 'echo off, control publish: the other gets it');
    silent($x, 'echo off, control publish: the sender does not');

    # no channel: the data has nowhere to go
    my $n = WsTest->connect($v, '/nochan');
    is($n->status, 101, '/nochan: 101');
    $n->send_text('anyone?');
    is_deeply(WsChannel::json_or_undef(next_text($n)), { error => 'no channel to publish to' },
              'no WebSocketChannel: error answer');
    $n->send_text('still open?');
    is_deeply(WsChannel::json_or_undef(next_text($n)), { error => 'no channel to publish to' },
              '... and the socket stays open');

    # control off: no hello, JSON is data
    my $p = WsChannel::subscriber($v, '/plainchan', hello => 0);
    my $q = WsChannel::subscriber($v, '/plainchan', hello => 0);
    silent($p, 'control off: no hello');
    my $json = qq({"action":"subscribe","channel":"room:1"});
    $p->send_text($json);
    is(next_text($q), $json, 'control off: a control-like message is data for the others');
    is(next_text($p), $json, '... and for the sender');

    for my $c ($a, $b, $x, $y, $n, $p, $q) {
        $c->send_close(1000);
        my($code) = $c->expect_close(5);
        is($code, 1000, 'close 1000 echoed');
    }
}

plan tests => 2;
WsTest::diag_to_stderr();

WsTest::run_cases(['control messages, echo, no channel' => \&control_case]);
