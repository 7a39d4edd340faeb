# WebSocketHandler forward: every message is an HTTP POST to a backend,
# whose answer goes back to the sender.  The backend is a real HTTP/1.1
# server (t/lib/fwd_backend.py) that this test starts on 127.0.0.1 and
# stops by its PID; a second port with nothing listening is "backend down".
#  - messages reach it with the documented headers and body; answers come
#    back in order; binary stays binary; 204 sends nothing;
#  - open refused by the backend closes with 1008; open and close events;
#  - backend down, slower than WebSocketForwardTimeout, answering 500 or
#    too much: the sender gets {"error":...} and goes on; meanwhile an echo
#    socket in the same child answers within 100 ms;
#  - 10 000 messages from 10 sockets use far fewer backend connections.
# ws and wss.
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib "$FindBin::Bin/../lib";

use Apache::Test qw(-withtestmore);
use Test::More import => ["!plan"];
use JSON::PP ();
use MIME::Base64 qw(encode_base64);
use Time::HiRes qw(time sleep);
use WsTest;
use FwdBackend;

my @cases;
plan tests => 2 * 9 + 1;
WsTest::diag_to_stderr();

FwdBackend::start();

# --- helpers ------------------------------------------------------------

sub open_ws {
    my($v, $path, %o) = @_;
    my $c = WsTest->connect($v, $path, %o);
    die "$v $path: handshake failed (" . ($c->status_line // '') . ")\n"
        unless $c->status == 101;
    return $c;
}

sub next_msg {
    my($c, $t) = @_;
    my $m = $c->read_message($t // 10);
    return $m && !$m->{eof} && defined $m->{opcode} && $m->{opcode} <= 2 ? $m : undef;
}

sub text_is {
    my($c, $want, $name, $t) = @_;
    my $m = next_msg($c, $t);
    ok($m && $m->{opcode} == 1, "$name: a text message");
    is($m ? $m->{payload} : undef, $want, $name);
}

sub close_ok {
    my($c, $name) = @_;
    $c->send_close(1000);
    my($code) = $c->expect_close(10);
    is($code, 1000, "$name: the socket closes normally");
}

# --- cases --------------------------------------------------------------

push @cases, ['headers and body reach the backend' => sub {
    my $v = shift;
    my $c = open_ws($v, '/fwdinspect');
    my $text = "h\xC3\xA9llo \xE2\x82\xAC";
    $c->send_text($text);
    my $m = next_msg($c);
    ok($m && $m->{opcode} == 1, 'the JSON answer comes back as text');
    my $j = eval { JSON::PP->new->decode($m->{payload}) } || {};
    is($j->{method}, 'POST', 'a POST');
    is($j->{'WebSocket-Event'}, 'message', 'WebSocket-Event: message');
    is($j->{'WebSocket-Frame'}, 'text', 'WebSocket-Frame: text');
    like($j->{'WebSocket-Connection-Id'} // '', qr/^\d+-\d+$/, 'WebSocket-Connection-Id: PID-N');
    is($j->{'Content-Type'}, 'text/plain; charset=utf-8', 'Content-Type of a text message');
    is($j->{'X-Forwarded-For'}, '127.0.0.1', 'X-Forwarded-For: the client');
    is($j->{'WebSocket-User'}, undef, 'no WebSocket-User without a user');
    is($j->{body}, $text, 'the body is the message, byte for byte');
    my $id = $j->{'WebSocket-Connection-Id'};

    my $bin = join '', map { chr } 0 .. 255;
    $c->send_binary($bin);
    $m = next_msg($c);
    $j = eval { JSON::PP->new->decode($m->{payload}) } || {};
    is($j->{'WebSocket-Frame'}, 'binary', 'WebSocket-Frame: binary');
    is($j->{'Content-Type'}, 'application/octet-stream', 'Content-Type of a binary message');
    is($j->{body}, $bin, 'the binary body, byte for byte');
    is($j->{'WebSocket-Connection-Id'}, $id, 'the same connection id');
    close_ok($c, 'inspect');

    my $auth = encode_base64('alice:secret', '');
    $c = open_ws($v, '/fwduser', headers => [Authorization => "Basic $auth"]);
    $c->send_text('who');
    $m = next_msg($c);
    $j = eval { JSON::PP->new->decode($m->{payload}) } || {};
    is($j->{'WebSocket-User'}, 'alice', 'WebSocket-User: the authenticated user');
    close_ok($c, 'user');
}];

push @cases, ['answers in order, binary stays binary, 204 sends nothing' => sub {
    my $v = shift;
    my $c = open_ws($v, '/fwdslow');
    my @sleeps = (400, 0, 200, 10, 100);
    $c->send_text("$sleeps[$_]:answer $_") for 0 .. $#sleeps;
    my @got;
    while (@got < @sleeps) {
        my $m = next_msg($c) or last;
        push @got, $m->{payload};
    }
    is_deeply(\@got, [ map { "answer $_" } 0 .. $#sleeps ], 'answers in the order of the messages');
    close_ok($c, 'slow');

    $c = open_ws($v, '/fwdbinary');
    my $bin = WsTest::random_bytes(3000);
    $c->send_binary($bin);
    my $m = next_msg($c);
    ok($m && $m->{opcode} == 2, 'application/octet-stream comes back as binary');
    ok($m && $m->{payload} eq $bin, 'the same 3000 bytes');
    close_ok($c, 'binary');

    $c = open_ws($v, '/fwdecho');
    $c->send_binary("\x00\x01\x02");
    $m = next_msg($c);
    ok($m && $m->{opcode} == 2 && $m->{payload} eq "\x00\x01\x02",
       'echoed with its Content-Type: binary stays binary');
    $c->send_text('204');
    $c->send_text('after 204');
    text_is($c, 'after 204', 'a 204 sends nothing: the next answer is the next message\'s');
    close_ok($c, 'echo');
}];

push @cases, ['answering 500, too much, bad UTF-8' => sub {
    my $v = shift;
    my $c = open_ws($v, '/fwdecho');
    $c->send_text('500');
    text_is($c, '{"error":"backend answered 500"}', '500: the JSON error');
    $c->send_text('badutf8');
    text_is($c, '{"error":"backend answer is not valid UTF-8"}', 'invalid UTF-8 text: the JSON error');
    $c->send_text('go on');
    text_is($c, 'go on', 'the socket goes on after errors');
    close_ok($c, 'echo');

    $c = open_ws($v, '/fwdbig');
    $c->send_text('big');
    text_is($c, '{"error":"backend answer too large"}', '5000 bytes over WebSocketForwardMaxResponse 1000');
    $c->send_text('small');
    text_is($c, 'small', 'the socket goes on');
    close_ok($c, 'big');
}];

push @cases, ['backend down' => sub {
    my $v = shift;
    my $c = open_ws($v, '/fwddown');
    $c->send_text('anyone?');
    text_is($c, '{"error":"backend unavailable"}', 'nothing listening: the JSON error');
    $c->send_text('still?');
    text_is($c, '{"error":"backend unavailable"}', 'and again for the next message');
    close_ok($c, 'down');
}];

push @cases, ['slow past the timeout; other sockets not delayed' => sub {
    my $v = shift;
    # a hanging forward socket and an echo socket in the same child
    my(@hang, @echo, $hang, $echo);
    for (1 .. 20) {
        push @hang, open_ws($v, '/fwdhang');
        push @echo, open_ws($v, '/echo');
        my %at = map { ($_->serving_pid => $_) } @hang;
        ($echo) = grep { $at{$_->serving_pid} } @echo;
        if ($echo) { $hang = $at{$echo->serving_pid}; last }
    }
    ok($echo, 'a forward socket and an echo socket in the same child');
    $hang ||= $hang[0];
    $_->close for grep { $_ != $hang && (!$echo || $_ != $echo) } @hang, @echo;

    my $t0 = time;
    $hang->send_text('hang');
    my($max, $n) = (0, 0);
    if ($echo) {
        my $until = time + 0.8;
        while (time < $until) {
            my $t1 = time;
            $echo->send_text("ping $n");
            my $m = $echo->read_message(5);
            last unless $m && ($m->{payload} // '') eq "ping $n";
            my $dt = (time - $t1) * 1000;
            $max = $dt if $dt > $max;
            $n++;
        }
    }
    ok($n >= 10, "the echo socket kept answering while the backend hung ($n round trips)");
    cmp_ok($max, '<', 100, sprintf('slowest echo round trip %.1f ms (< 100 ms)', $max));
    text_is($hang, '{"error":"backend timed out"}', 'WebSocketForwardTimeout 1: the JSON error');
    my $dt = time - $t0;
    ok($dt > 0.9 && $dt < 5, sprintf('after about the timeout (%.1f s)', $dt));
    $hang->send_text('next');
    text_is($hang, 'next', 'the socket goes on');
    close_ok($hang, 'hang');
    $echo->close if $echo;
}];

push @cases, ['open refused by the backend' => sub {
    my $v = shift;
    my $c = open_ws($v, '/fwdrefuse');
    $c->send_text('let me in');
    my($code, $reason) = $c->expect_close(10);
    is($code, 1008, 'a 403 to the open event closes with 1008');
    ok(!grep({ $_->{opcode} <= 2 } $c->skipped_frames), 'and nothing of the message came back');
}];

push @cases, ['open and close events' => sub {
    my $v = shift;
    my $c = open_ws($v, '/fwdrecord');
    text_is($c, 'welcome', 'the answer to open goes to the client');
    $c->send_text('m:one');
    text_is($c, 'ok m:one', 'then the message\'s answer');
    $c->send_close(1000);
    my($code) = $c->expect_close(10);
    is($code, 1000, 'closes normally');
    my $log = '';
    for (1 .. 50) {
        $log = FwdBackend::get('/log');
        last if $log =~ /^close /m && $log =~ /m:one/;
        sleep 0.1;
    }
    my @mine;
    my($id) = $log =~ /^message (\S+) text - m:one$/m;
    ok($id, 'the message was recorded with its id');
    @mine = grep { (split / /)[1] eq ($id // '') } split /\n/, $log;
    is_deeply(\@mine, ["open $id - - -", "message $id text - m:one", "close $id - 1000 -"],
              'open, message, close (with WebSocket-Close-Code) for this socket');
}];

push @cases, ['backend answers for many messages' => sub {
    my $v = shift;
    my $c = open_ws($v, '/fwdecho');
    $c->send_text("n$_") for 1 .. 200;
    my @got;
    while (@got < 200) {
        my $m = next_msg($c) or last;
        push @got, $m->{payload};
    }
    is_deeply(\@got, [ map { "n$_" } 1 .. 200 ], '200 pipelined messages, answered in order');
    close_ok($c, 'echo');
}];

push @cases, ['an empty message' => sub {
    my $v = shift;
    my $c = open_ws($v, '/fwdecho');
    $c->send_text('');
    my $m = next_msg($c);
    ok($m && $m->{opcode} == 1 && $m->{payload} eq '', 'an empty message gets an empty answer');
    close_ok($c, 'empty');
}];

WsTest::run_cases(@cases);

# 10 000 messages from 10 sockets: the backend connections are reused.
{
    my $before = FwdBackend::connections();
    my @c = map { open_ws('ws', '/fwdecho') } 1 .. 10;
    my $per = 1000;
    my $t0 = time;
    my $ok = 1;
    for my $batch (0 .. 9) {
        for my $c (@c) {
            $c->send_text("m$_") for $batch * 100 + 1 .. $batch * 100 + 100;
        }
        for my $c (@c) {
            for my $i ($batch * 100 + 1 .. $batch * 100 + 100) {
                my $m = next_msg($c, 20);
                $ok = 0, last unless $m && $m->{payload} eq "m$i";
            }
        }
    }
    my $dt = time - $t0;
    my $used = FwdBackend::connections() - $before;
    diag(sprintf('10 000 messages from 10 sockets in %.2f s (%.0f/s), %d backend connections',
                 $dt, 10 * $per / $dt, $used));
    ok($ok && $used < 100,
       "every answer back in order, over $used backend connections (< 100)");
    $_->close for @c;
}
