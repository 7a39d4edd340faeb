# Protocol errors: the server sends a close frame with the exact code and
# then closes the TCP connection; nothing is echoed. ws and wss.
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib "$FindBin::Bin/../lib";

use Apache::Test qw(-withtestmore);
use Test::More import => ["!plan"];
use WsTest;

use constant { CONT => 0, TEXT => 1, BIN => 2, CLOSE => 8, PING => 9, PONG => 10 };

sub f { WsTest::build_frame(@_) }

# [name, path, wire bytes (or code ref returning them), expected close code]
my @cases;

for my $rsv ([4, 'RSV1'], [2, 'RSV2'], [1, 'RSV3'], [7, 'all RSV bits']) {
    push @cases, [ "$rsv->[1] set on a text frame", '/echo',
                   f(opcode => TEXT, payload => 'x', rsv => $rsv->[0]), 1002 ];
}
push @cases, [ 'RSV1 set on a ping', '/echo', f(opcode => PING, payload => 'x', rsv => 4), 1002 ];
for my $op (3 .. 7, 0xB .. 0xF) {
    push @cases, [ sprintf('reserved opcode 0x%X', $op), '/echo',
                   f(opcode => $op, payload => 'x'), 1002 ];
}
push @cases,
  [ 'unmasked text frame', '/echo', f(opcode => TEXT, payload => 'hello', masked => 0), 1002 ],
  [ 'unmasked ping', '/echo', f(opcode => PING, payload => '', masked => 0), 1002 ],
  [ 'ping of 126 bytes', '/echo', f(opcode => PING, payload => 'p' x 126), 1002 ],
  [ 'pong of 126 bytes', '/echo', f(opcode => PONG, payload => 'p' x 126), 1002 ],
  [ 'close of 126 bytes', '/echo',
    f(opcode => CLOSE, payload => pack('n', 1000) . ('r' x 124)), 1002 ],
  [ 'fragmented ping (FIN=0)', '/echo', f(opcode => PING, payload => 'x', fin => 0), 1002 ],
  [ 'fragmented pong (FIN=0)', '/echo', f(opcode => PONG, payload => 'x', fin => 0), 1002 ],
  [ 'fragmented close (FIN=0)', '/echo',
    f(opcode => CLOSE, payload => pack('n', 1000), fin => 0), 1002 ],
  [ 'continuation without a message', '/echo', f(opcode => CONT, payload => 'x'), 1002 ],
  [ 'continuation (FIN=0) without a message', '/echo',
    f(opcode => CONT, payload => 'x', fin => 0), 1002 ],
  [ 'text while a text message is open', '/echo',
    f(opcode => TEXT, payload => 'a', fin => 0) . f(opcode => TEXT, payload => 'b'), 1002 ],
  [ 'binary while a text message is open', '/echo',
    f(opcode => TEXT, payload => 'a', fin => 0) . f(opcode => BIN, payload => 'b'), 1002 ],
  [ 'text while a binary message is open', '/echo',
    f(opcode => BIN, payload => 'a', fin => 0) . f(opcode => CONT, payload => 'b', fin => 0)
    . f(opcode => TEXT, payload => 'c', fin => 0), 1002 ],
  [ 'close with a 1-byte payload', '/echo', f(opcode => CLOSE, payload => "\x03"), 1002 ];

for my $code (0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535) {
    push @cases, [ "close with invalid code $code", '/echo',
                   f(opcode => CLOSE, payload => pack('n', $code)), 1002 ];
}

my %bad_utf8 = (
    'byte 0xFF'                 => "ab\xFFcd",
    'lone continuation byte'    => "\x80",
    'overlong slash'            => "\xC0\xAF",
    'overlong 3-byte'           => "\xE0\x80\xAF",
    'UTF-16 surrogate'          => "\xED\xA0\x80",
    'above U+10FFFF'            => "\xF4\x90\x80\x80",
    'truncated at the end'      => "abc\xE2\x82",
    'bad continuation'          => "\xE2\x28\xA1",
);
for my $name (sort keys %bad_utf8) {
    push @cases, [ "text with invalid UTF-8: $name", '/echo',
                   f(opcode => TEXT, payload => $bad_utf8{$name}), 1007 ];
}
push @cases,
  [ 'invalid UTF-8 split across fragments', '/echo',
    f(opcode => TEXT, payload => "ok \xE2\x82", fin => 0)
    . f(opcode => CONT, payload => "\x28 rest", fin => 1), 1007 ],
  [ 'message ends inside a character (last fragment)', '/echo',
    f(opcode => TEXT, payload => "ok \xF0\x9F", fin => 0)
    . f(opcode => CONT, payload => "\x98", fin => 1), 1007 ],
  [ 'invalid UTF-8 in the first fragment, rest never sent', '/echo',
    f(opcode => TEXT, payload => "fine so far \xFF", fin => 0), 1007 ],
  [ 'invalid UTF-8 in a middle fragment, rest never sent', '/echo',
    f(opcode => TEXT, payload => "fine ", fin => 0)
    . f(opcode => CONT, payload => "\xC0\xAF", fin => 0), 1007 ],
  [ 'close reason not UTF-8', '/echo',
    f(opcode => CLOSE, payload => pack('n', 1000) . "bye \xFF\xFE"), 1007 ],
  [ 'close reason truncated inside a character', '/echo',
    f(opcode => CLOSE, payload => pack('n', 1000) . "bye \xE2\x82"), 1007 ];

push @cases,
  [ 'text over WebSocketMaxMessageSize (1001 > 1000)', '/small',
    f(opcode => TEXT, payload => 'x' x 1001), 1009 ],
  [ 'binary over WebSocketMaxMessageSize', '/small',
    f(opcode => BIN, payload => "\0" x 1001), 1009 ],
  [ 'fragments adding up over WebSocketMaxMessageSize', '/small',
    f(opcode => BIN, payload => "\0" x 600, fin => 0)
    . f(opcode => CONT, payload => "\0" x 401, fin => 1), 1009 ],
  [ 'announced length over the limit, payload not sent', '/small',
    substr(f(opcode => BIN, payload => "\0" x 5000), 0, 8 + 100), 1009 ],
  [ 'announced 1 GiB on /echo (limit 8 MiB), payload not sent', '/echo',
    f(opcode => BIN, payload => '', length => 1024 ** 3), 1009 ],
  [ 'over 8 MiB in fragments on /echo', '/echo',
    sub {
        my $chunk = "\0" x (1024 * 1024);
        my $w = f(opcode => BIN, payload => $chunk, fin => 0);
        $w .= f(opcode => CONT, payload => $chunk, fin => 0) for 1 .. 7;
        $w . f(opcode => CONT, payload => "\0", fin => 1);
    }, 1009 ];

plan tests => 2 * @cases + 2;
WsTest::diag_to_stderr();

for my $v (WsTest::variants()) {
    for my $case (@cases) {
        my($name, $path, $wire, $want) = @$case;
        subtest "$v: $name -> $want" => sub {
            my $c = WsTest->connect($v, $path);
            is($c->status, 101, 'handshake') or return done_testing();
            $wire = $wire->() if ref $wire;
            $c->send_raw($wire, 30);
            my($code, $reason, $frame) = $c->expect_close(15);
            ok($frame, 'server sent a close frame')
                or diag($c->is_eof ? 'connection closed without a close frame' : 'timeout');
            is($code, $want, "close code $want");
            if ($frame) {
                ok(!$frame->{masked} && $frame->{fin}, 'close frame unmasked, FIN set');
                my $r = $reason;
                ok(utf8::decode($r), 'close reason is UTF-8');
            }
            my @data = grep { $_->{opcode} == TEXT || $_->{opcode} == BIN } $c->skipped_frames;
            is(scalar(@data), 0, 'nothing was echoed');
            ok($c->wait_eof(10), 'TCP connection closed by the server');
            done_testing();
        };
    }
    # the server is still fine afterwards
    my $c = WsTest->connect($v, '/echo');
    $c->send_text('still here');
    my $m = $c->read_message(10);
    ok($m && $m->{payload} && $m->{payload} eq 'still here', "$v: server still echoes");
}
