# The publish endpoint (SetHandler websocket-publish): POST /publish/CHANNEL
# delivers the body (text, or binary for application/octet-stream) and
# answers JSON; other methods 405 with Allow: POST; a bad channel name or a
# text body that is not UTF-8 400; a body over WebSocketMaxMessageSize
# (65536 on /publish) 413.  Behind Require, a POST that is refused (401
# from Basic auth on /authpub, 403 from "Require ip" on /ippub) delivers
# nothing.  A subscriber on /ctl (control message subscribe) watches what
# arrives.  ws and wss.
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

my $MAX = 65536;        # WebSocketMaxMessageSize of /publish
my $QUIET = 0.5;

sub json_is {
    my($r, $status, $want, $name) = @_;
    is($r->{status}, $status, "$name: $status");
    like($r->{headers}->{'content-type'} // '', qr{^application/json}, "$name: JSON answer");
    is_deeply($r->{json}, $want, "$name: body") or diag($r->{body});
}

# the watcher's next message is $want (text unless $op says otherwise),
# and nothing came before it
sub next_is {
    my($w, $want, $op, $name) = @_;
    my $m = $w->read_message(5);
    ok($m && !$m->{eof} && defined $m->{opcode} && $m->{opcode} == $op && $m->{payload} eq $want,
       "$name: delivered as " . ($op == BIN ? 'binary' : 'text'))
        or diag(!$m ? 'nothing' : $m->{eof} ? 'eof' : sprintf('opcode %d, %d bytes: %s', $m->{opcode},
                length $m->{payload}, substr($m->{payload}, 0, 60)));
}

sub nothing_arrives {
    my($w, $name) = @_;
    my $m = $w->read_message($QUIET);
    ok(!$m, "$name: nothing delivered")
        or diag($m->{eof} ? 'eof' : "got: " . substr($m->{payload} // '', 0, 60));
}

sub publish_case {
    my $v = shift;
    my $ch = "room:pub-$v";

    my $w = WsChannel::subscriber($v, '/ctl');
    $w->send_text(qq({"action":"subscribe","channel":"$ch"}));
    my $m = $w->read_message(5);
    is($m && $m->{payload}, qq({"event":"subscribed","channel":"$ch"}), "watcher subscribed to $ch");

    # 200: text
    my $r = WsChannel::post($v, "/publish/$ch", 'hello', type => 'text/plain');
    json_is($r, 200, { channel => $ch, type => 'text', bytes => 5 }, 'POST text');
    next_is($w, 'hello', TEXT, 'POST text');

    # percent-decoded last segment; UTF-8 text; no Content-Type at all
    my $utf8 = "gr\xC3\xBC\xC3\x9Fe \xE2\x82\xAC \xF0\x9F\x98\x80";
    $r = WsChannel::post($v, '/publish/' . WsChannel::path_escape($ch), $utf8);
    json_is($r, 200, { channel => $ch, type => 'text', bytes => length $utf8 },
            'POST to a percent-encoded channel');
    next_is($w, $utf8, TEXT, 'UTF-8 text');

    # binary: bytes that are no UTF-8 at all
    my $bin = join '', map { chr } 0 .. 255;
    $r = WsChannel::post($v, "/publish/$ch", $bin, type => 'application/octet-stream');
    json_is($r, 200, { channel => $ch, type => 'binary', bytes => 256 }, 'POST octet-stream');
    next_is($w, $bin, BIN, 'octet-stream');

    # exactly the limit
    my $big = WsTest::utf8_text($MAX);
    $r = WsChannel::post($v, "/publish/$ch", $big);
    json_is($r, 200, { channel => $ch, type => 'text', bytes => $MAX }, "POST of $MAX bytes");
    next_is($w, $big, TEXT, "$MAX bytes");

    # refusals, none of which may deliver anything
    for my $method (qw(GET PUT DELETE)) {
        $r = WsChannel::post($v, "/publish/$ch", $method eq 'PUT' ? 'x' : undef, method => $method);
        json_is($r, 405, { error => 'method not allowed' }, $method);
        like($r->{headers}->{allow} // '', qr/\bPOST\b/, "$method: Allow names POST");
    }
    # an encoded slash never reaches the handler: httpd answers 404 itself
    # (AllowEncodedSlashes Off)
    $r = WsChannel::post($v, "/publish/a%2Fb", 'never');
    ok($r->{status} == 404 || $r->{status} == 400, "channel name with %2F: $r->{status}");
    for my $bad ([space => 'bad%20name'], [control => 'x%01y'], ['DEL' => 'x%7Fy'],
                 [empty => ''], ['201 bytes' => 'c' x 201], ['not UTF-8' => 'x%FFy']) {
        $r = WsChannel::post($v, "/publish/$bad->[1]", 'never');
        json_is($r, 400, { error => 'bad channel name' }, "channel name with $bad->[0]");
    }
    $r = WsChannel::post($v, '/publish/' . ('c' x 200), 'nobody listens');
    is($r->{status}, 200, 'a 200-byte channel name is fine');
    $r = WsChannel::post($v, "/publish/$ch", "bad \xC3\x28 text", type => 'text/plain');
    json_is($r, 400, { error => 'text body is not valid UTF-8' }, 'text body not UTF-8');
    $r = WsChannel::post($v, "/publish/$ch", 'y' x ($MAX + 1));
    json_is($r, 413, { error => 'body too large' }, 'body of ' . ($MAX + 1) . ' bytes');
    nothing_arrives($w, 'after 405, 400 and 413');

    # Require in front: Basic auth, only alice
    $r = WsChannel::post($v, "/authpub/$ch", 'no credentials');
    is($r->{status}, 401, 'Basic: no credentials: 401');
    like($r->{headers}->{'www-authenticate'} // '', qr/^Basic/i, 'Basic: WWW-Authenticate');
    $r = WsChannel::post($v, "/authpub/$ch", 'wrong password', user => 'alice', password => 'nope');
    is($r->{status}, 401, 'Basic: a wrong password: 401');
    $r = WsChannel::post($v, "/authpub/$ch", 'bob is not allowed', user => 'bob');
    ok($r->{status} == 401 || $r->{status} == 403, "Basic: bob (Require user alice): $r->{status}");
    # Require ip of another host
    $r = WsChannel::post($v, "/ippub/$ch", 'wrong address');
    is($r->{status}, 403, 'Require ip 192.0.2.1: 403');
    nothing_arrives($w, 'after the refused POSTs');

    $r = WsChannel::post($v, "/authpub/$ch", 'from alice', user => 'alice');
    json_is($r, 200, { channel => $ch, type => 'text', bytes => 10 }, 'Basic: alice');
    next_is($w, 'from alice', TEXT, "alice's POST, the first to arrive since");

    $w->send_close(1000);
    my($code) = $w->expect_close(5);
    is($code, 1000, 'watcher closes');
}

plan tests => 2;
WsTest::diag_to_stderr();

WsTest::run_cases(['POST /publish/CHANNEL' => \&publish_case]);
