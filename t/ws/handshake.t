# The opening handshake: what gets a 101, what gets 400/403/426, and what
# is declined (served by the URL's normal handler). Every case on ws and wss.
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib "$FindBin::Bin/../lib";

use Apache::Test qw(-withtestmore);
use Test::More import => ["!plan"];
use MIME::Base64 qw(encode_base64);
use WsTest;

my $PAGE = "mod_ws test page: echo\n";

sub b64 { encode_base64($_[0], '') }

# A working 101: accept key, Upgrade, Connection, and the socket echoes.
sub check_101 {
    my($c, %o) = @_;
    is($c->status, 101, '101 Switching Protocols') or diag($c->status_line);
    ok($c->accept_ok, 'Sec-WebSocket-Accept matches the key')
        or diag('got ' . ($c->header('Sec-WebSocket-Accept') // 'none'));
    is($c->header_count('Sec-WebSocket-Accept'), 1, 'one Sec-WebSocket-Accept');
    is(lc($c->header('Upgrade') // ''), 'websocket', 'Upgrade: websocket');
    ok($c->header_has_token('Connection', 'upgrade'), 'Connection: Upgrade');
    if (exists $o{protocol}) {
        if (defined $o{protocol}) {
            is(join(',', $c->header('Sec-WebSocket-Protocol')), $o{protocol},
               "subprotocol $o{protocol} chosen");
        }
        else {
            is($c->header_count('Sec-WebSocket-Protocol'), 0, 'no Sec-WebSocket-Protocol');
        }
    }
    return unless $c->status == 101;
    $c->send_text('ping?');
    my $m = $c->read_message(5);
    ok($m && defined $m->{opcode} && $m->{opcode} == 1 && $m->{payload} eq 'ping?',
       'the upgraded socket echoes');
    $c->send_close(1000);
    my($code) = $c->expect_close(5);
    is($code, 1000, 'closes cleanly');
}

sub check_status {
    my($c, $want, %o) = @_;
    is($c->status, $want, "answered $want") or diag($c->head // $c->status_line);
    ok(!$c->accept_ok, 'no Sec-WebSocket-Accept') if $want != 101;
    if ($o{version_header}) {
        is($c->header('Sec-WebSocket-Version'), '13', 'Sec-WebSocket-Version: 13');
    }
    if (defined $o{body}) {
        is($c->body, $o{body}, 'the URL\'s normal content');
    }
}

my @cases = (
    [ 'plain upgrade' => sub {
        check_101(WsTest->connect($_[0], '/echo'), protocol => undef) } ],
    [ 'Connection: keep-alive, Upgrade' => sub {
        check_101(WsTest->connect($_[0], '/echo',
            headers => [Connection => 'keep-alive, Upgrade'])) } ],
    [ 'mixed-case names and tokens' => sub {
        check_101(WsTest->connect($_[0], '/echo',
            headers => [UpGrAdE => 'WebSocket', cOnNeCtIoN => 'keep-alive, UPGRADE',
                        'sec-websocket-key' => b64(WsTest::random_bytes(16)),
                        'SEC-WEBSOCKET-VERSION' => '13'])) } ],
    [ 'subprotocol: server order wins' => sub {
        check_101(WsTest->connect($_[0], '/echo',
            headers => ['Sec-WebSocket-Protocol' => 'superchat, chat']), protocol => 'chat') } ],
    [ 'subprotocol: the one offered' => sub {
        check_101(WsTest->connect($_[0], '/echo',
            headers => ['Sec-WebSocket-Protocol' => 'foo, superchat']), protocol => 'superchat') } ],
    [ 'subprotocol: repeated header lines' => sub {
        check_101(WsTest->connect($_[0], '/echo',
            add_headers => ['Sec-WebSocket-Protocol' => 'foo',
                            'Sec-WebSocket-Protocol' => 'superchat']), protocol => 'superchat') } ],
    [ 'subprotocol: unknown one gives none' => sub {
        check_101(WsTest->connect($_[0], '/echo',
            headers => ['Sec-WebSocket-Protocol' => 'foo, bar']), protocol => undef) } ],
    [ 'subprotocol: none configured' => sub {
        check_101(WsTest->connect($_[0], '/small',
            headers => ['Sec-WebSocket-Protocol' => 'chat']), protocol => undef) } ],
    [ 'missing key' => sub {
        check_status(WsTest->connect($_[0], '/echo', key => undef), 400) } ],
    [ 'key not base64' => sub {
        check_status(WsTest->connect($_[0], '/echo', key => '!!!!!!!!!!!!!!!!!!!!!!=='), 400) } ],
    [ 'key of 15 bytes' => sub {
        check_status(WsTest->connect($_[0], '/echo', key => b64('x' x 15)), 400) } ],
    [ 'key of 17 bytes' => sub {
        check_status(WsTest->connect($_[0], '/echo', key => b64('x' x 17)), 400) } ],
    [ 'short key' => sub {
        check_status(WsTest->connect($_[0], '/echo', key => 'abc'), 400) } ],
    [ 'Connection without upgrade' => sub {
        check_status(WsTest->connect($_[0], '/echo',
            headers => [Connection => 'keep-alive']), 400) } ],
    [ 'Connection: upgraded (not the token)' => sub {
        check_status(WsTest->connect($_[0], '/echo',
            headers => [Connection => 'upgraded']), 400) } ],
    [ 'no Connection header' => sub {
        check_status(WsTest->connect($_[0], '/echo',
            headers => [Connection => undef]), 400) } ],
    [ 'version 8' => sub {
        check_status(WsTest->connect($_[0], '/echo',
            headers => ['Sec-WebSocket-Version' => '8']), 426, version_header => 1) } ],
    [ 'version 14' => sub {
        check_status(WsTest->connect($_[0], '/echo',
            headers => ['Sec-WebSocket-Version' => '14']), 426, version_header => 1) } ],
    [ 'version missing' => sub {
        check_status(WsTest->connect($_[0], '/echo',
            headers => ['Sec-WebSocket-Version' => undef]), 426, version_header => 1) } ],
    [ 'GET without Upgrade is declined' => sub {
        check_status(WsTest::http_request($_[0], 'GET', '/echo'), 200, body => $PAGE) } ],
    [ 'Upgrade: h2c is declined' => sub {
        check_status(WsTest->connect($_[0], '/echo',
            headers => [Upgrade => 'h2c', Connection => 'Upgrade, HTTP2-Settings',
                        'HTTP2-Settings' => 'AAMAAABkAARAAAAAAAIAAAAA']), 200, body => $PAGE) } ],
    [ 'HTTP/1.0 upgrade is declined' => sub {
        my $c = WsTest->connect($_[0], '/echo', protocol => 'HTTP/1.0');
        check_status($c, 200, body => $PAGE) } ],
    [ 'POST upgrade is declined' => sub {
        my $v = $_[0];
        my $plain = WsTest::http_request($v, 'POST', '/echo', body => 'x=1');
        my $c = WsTest->connect($v, '/echo', method => 'POST', body => 'x=1');
        isnt($c->status, 101, 'no 101');
        is($c->status, $plain->status,
           'same answer as a POST without Upgrade (' . $plain->status . ')');
        ok(!$c->accept_ok, 'no Sec-WebSocket-Accept') } ],
    [ 'upgrade where no WebSocketHandler is' => sub {
        check_status(WsTest->connect($_[0], '/plain'), 200,
                     body => "mod_ws test page: plain\n") } ],
    [ 'same Origin' => sub {
        check_101(WsTest->connect($_[0], '/echo',
            headers => [Origin => WsTest::origin_of($_[0])])) } ],
    [ 'same Origin, default port folded (Host has it)' => sub {
        my $v = $_[0];
        my($scheme, $port) = $v eq 'wss' ? ('https', 443) : ('http', 80);
        check_101(WsTest->connect($v, '/echo',
            headers => [Host => "localhost:$port", Origin => "$scheme://localhost"])) } ],
    [ 'same Origin, default port folded (Origin has it)' => sub {
        my $v = $_[0];
        my($scheme, $port) = $v eq 'wss' ? ('https', 443) : ('http', 80);
        check_101(WsTest->connect($v, '/echo',
            headers => [Host => 'localhost', Origin => "$scheme://localhost:$port"])) } ],
    [ 'foreign Origin' => sub {
        check_status(WsTest->connect($_[0], '/echo',
            headers => [Origin => 'http://evil.example']), 403) } ],
    [ 'Origin with another port' => sub {
        my $v = $_[0];
        check_status(WsTest->connect($v, '/echo',
            headers => [Origin => WsTest::http_scheme($v) . '://localhost:1']), 403) } ],
    [ 'Origin with the other scheme' => sub {
        my $v = $_[0];
        my $other = $v eq 'wss' ? 'http' : 'https';
        check_status(WsTest->connect($v, '/echo',
            headers => [Origin => "$other://" . WsTest::host_header($v)]), 403) } ],
    [ 'Origin: null' => sub {
        check_status(WsTest->connect($_[0], '/echo', headers => [Origin => 'null']), 403) } ],
    [ 'AllowOrigin any' => sub {
        check_101(WsTest->connect($_[0], '/anyorigin',
            headers => [Origin => 'http://evil.example'])) } ],
    [ 'AllowOrigin list: first' => sub {
        check_101(WsTest->connect($_[0], '/origins',
            headers => [Origin => 'http://allowed.example'])) } ],
    [ 'AllowOrigin list: second, with port' => sub {
        check_101(WsTest->connect($_[0], '/origins',
            headers => [Origin => 'https://other.example:8443'])) } ],
    [ 'AllowOrigin list: not listed' => sub {
        check_status(WsTest->connect($_[0], '/origins',
            headers => [Origin => 'http://evil.example']), 403) } ],
    [ 'AllowOrigin list: listed host, other port' => sub {
        check_status(WsTest->connect($_[0], '/origins',
            headers => [Origin => 'https://other.example:9443']), 403) } ],
    [ 'no Origin on a list location' => sub {
        check_101(WsTest->connect($_[0], '/origins')) } ],
);

plan tests => 2 * @cases;
WsTest::diag_to_stderr();

WsTest::run_cases(@cases);
