# The echo handler: text back as text, binary back as binary, one unmasked
# frame per message whatever the size or fragmentation; pings answered with
# pongs; input split anywhere, down to one byte per write. ws and wss.
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib "$FindBin::Bin/../lib";

use Apache::Test qw(-withtestmore);
use Test::More import => ["!plan"];
use WsTest;

use constant { CONT => 0, TEXT => 1, BIN => 2, CLOSE => 8, PING => 9, PONG => 10 };

sub opname { my $o = shift; return defined $o ? sprintf('0x%X', $o) : 'undef' }

sub show {
    my $f = shift;
    return 'timeout' unless $f;
    return 'eof' if $f->{eof};
    return sprintf('opcode %s fin %d len %d', opname($f->{opcode}), $f->{fin} // 1,
                   length($f->{payload} // ''));
}

sub open_echo {
    my($v, $path) = @_;
    my $c = WsTest->connect($v, $path || '/echo');
    die "handshake failed: " . ($c->status_line // '') . "\n" unless $c->status == 101;
    return $c;
}

# the next frame must be one unfragmented, unmasked message like this
sub expect_echo {
    my($c, $op, $payload, $name, $timeout) = @_;
    my $f = $c->read_frame($timeout || 20);
    my $ok = $f && !$f->{eof} && $f->{opcode} == $op && $f->{fin} && !$f->{masked}
        && !$f->{rsv} && $f->{payload} eq $payload;
    ok($ok, $name) or diag('expected opcode ' . opname($op) . ' len ' . length($payload)
                           . ', got ' . show($f)
                           . ($f && !$f->{eof} && $f->{opcode} == $op
                              ? ' (payload ' . ($f->{payload} eq $payload ? 'same' : 'differs') . ')' : ''));
    return $ok;
}

sub end_ok {
    my $c = shift;
    $c->send_close(1000);
    my($code) = $c->expect_close(10);
    is($code, 1000, 'close 1000 echoed');
}

my $MiB = 1024 * 1024;

my @cases;

# sizes across the 7/16/64-bit length encodings
for my $size (0, 1, 125, 126, 127, 65535, 65536, 65537, 4 * $MiB) {
    push @cases, [ "text of $size bytes" => sub {
        my $c = open_echo(shift);
        my $p = WsTest::utf8_text($size);
        $c->send_text($p);
        expect_echo($c, TEXT, $p, 'echoed as one text frame');
        end_ok($c);
    } ];
    push @cases, [ "binary of $size bytes" => sub {
        my $c = open_echo(shift);
        my $p = WsTest::binary_data($size);
        $c->send_binary($p);
        expect_echo($c, BIN, $p, 'echoed as one binary frame');
        end_ok($c);
    } ];
}

push @cases,
[ 'binary at WebSocketMaxMessageSize (8 MiB)' => sub {
    my $c = open_echo(shift);
    my $p = WsTest::binary_data(8 * $MiB);
    $c->send_binary($p);
    expect_echo($c, BIN, $p, 'echoed', 60);
    end_ok($c);
} ],
[ 'text at WebSocketMaxMessageSize 1000' => sub {
    my $c = open_echo(shift, '/small');
    my $p = WsTest::utf8_text(1000);
    $c->send_text($p);
    expect_echo($c, TEXT, $p, 'echoed');
    my $b = WsTest::binary_data(1000);
    $c->send_binary($b);
    expect_echo($c, BIN, $b, 'binary echoed');
    end_ok($c);
} ],
[ 'several messages in one write, in order' => sub {
    my $c = open_echo(shift);
    my @m = map { ($_ % 2 ? 'text ' : "bin\0") . $_ x $_ } 1 .. 50;
    my $wire = join '', map {
        WsTest::build_frame(opcode => ($_ % 2 ? TEXT : BIN), payload => $m[$_ - 1])
    } 1 .. 50;
    $c->send_raw($wire);
    my $ok = 1;
    for my $i (1 .. 50) {
        my $f = $c->read_frame(10);
        unless ($f && !$f->{eof} && $f->{opcode} == ($i % 2 ? TEXT : BIN)
                && $f->{payload} eq $m[$i - 1]) {
            $ok = 0;
            diag("message $i: " . show($f));
            last;
        }
    }
    ok($ok, '50 messages echoed in order');
    end_ok($c);
} ],
[ 'text in three fragments, split inside a character' => sub {
    my $c = open_echo(shift);
    my $p = "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80 done";
    # cut after the first byte of the 2-, 3- and 4-byte characters
    my @parts = (substr($p, 0, 4), substr($p, 4, 4), substr($p, 8));
    $c->send_frame(opcode => TEXT, payload => $parts[0], fin => 0);
    $c->send_frame(opcode => CONT, payload => $parts[1], fin => 0);
    $c->send_frame(opcode => CONT, payload => $parts[2], fin => 1);
    expect_echo($c, TEXT, $p, 'one text frame with the whole message');
    end_ok($c);
} ],
[ 'binary in many fragments, some empty' => sub {
    my $c = open_echo(shift);
    my $p = WsTest::binary_data(3000);
    my @frags = ('', unpack('(a100)*', $p), '');
    $c->send_frame(opcode => BIN, payload => shift(@frags), fin => 0);
    while (@frags) {
        my $part = shift @frags;
        $c->send_frame(opcode => CONT, payload => $part, fin => @frags ? 0 : 1);
    }
    expect_echo($c, BIN, $p, 'one binary frame with the whole message');
    end_ok($c);
} ],
[ 'large fragmented message (2 MiB in 64 KiB fragments)' => sub {
    my $c = open_echo(shift);
    my $p = WsTest::utf8_text(2 * $MiB);
    my @frags = unpack('(a65536)*', $p);
    my $wire = '';
    for my $i (0 .. $#frags) {
        $wire .= WsTest::build_frame(opcode => ($i ? CONT : TEXT), payload => $frags[$i],
                                     fin => ($i == $#frags ? 1 : 0));
    }
    $c->send_raw($wire);
    expect_echo($c, TEXT, $p, 'one text frame');
    end_ok($c);
} ],
[ 'pings between fragments' => sub {
    my $c = open_echo(shift);
    $c->send_frame(opcode => TEXT, payload => 'hello ', fin => 0);
    $c->send_ping('p1');
    $c->send_frame(opcode => CONT, payload => 'fragmented ', fin => 0);
    $c->send_ping('p2');
    $c->send_frame(opcode => CONT, payload => 'world', fin => 1);
    my @got = map { $c->read_frame(10) } 1 .. 3;
    ok($got[0] && !$got[0]{eof} && $got[0]{opcode} == PONG && $got[0]{payload} eq 'p1',
       'pong p1 first') or diag(show($got[0]));
    ok($got[1] && !$got[1]{eof} && $got[1]{opcode} == PONG && $got[1]{payload} eq 'p2',
       'then pong p2') or diag(show($got[1]));
    ok($got[2] && !$got[2]{eof} && $got[2]{opcode} == TEXT && $got[2]{fin}
       && $got[2]{payload} eq 'hello fragmented world', 'then the message')
        or diag(show($got[2]));
    end_ok($c);
} ],
[ 'ping answered with the same payload' => sub {
    my $c = open_echo(shift);
    for my $p ('', 'x', 'a' x 125, WsTest::binary_data(64)) {
        $c->send_ping($p);
        expect_echo($c, PONG, $p, 'pong for a ping of ' . length($p) . ' bytes');
    }
    end_ok($c);
} ],
[ 'unsolicited pong is ignored' => sub {
    my $c = open_echo(shift);
    $c->send_pong('nobody asked');
    $c->send_text('after');
    expect_echo($c, TEXT, 'after', 'next reply is the echo');
    end_ok($c);
} ],
[ 'frames written one byte at a time' => sub {
    my $c = open_echo(shift);
    my $t = WsTest::utf8_text(300);              # 16-bit length
    $c->send_text($t, chunk => 1, delay => 0.001);
    expect_echo($c, TEXT, $t, '300-byte text sent bytewise');
    $c->send_binary("\x00\x01\x02\xFF", chunk => 1, delay => 0.002);
    expect_echo($c, BIN, "\x00\x01\x02\xFF", 'short binary sent bytewise');
    $c->send_ping('bytewise', chunk => 1, delay => 0.002);
    expect_echo($c, PONG, 'bytewise', 'ping sent bytewise');
    my $big = WsTest::binary_data(70000);       # 64-bit length: header bytewise,
    my $frame = WsTest::build_frame(opcode => BIN, payload => $big);
    $c->send_chunked(substr($frame, 0, 14), 1, 0.002);   # 2+8+4 header bytes
    $c->send_chunked(substr($frame, 14), 7001, 0.001);
    expect_echo($c, BIN, $big, '70000-byte binary, header bytewise');
    end_ok($c);
} ],
[ 'a fragmented message written one byte at a time' => sub {
    my $c = open_echo(shift);
    my $wire = WsTest::build_frame(opcode => TEXT, payload => "\xE2\x82", fin => 0)
             . WsTest::build_frame(opcode => PING, payload => 'mid')
             . WsTest::build_frame(opcode => CONT, payload => "\xAC!", fin => 1);
    $c->send_chunked($wire, 1, 0.002);
    expect_echo($c, PONG, 'mid', 'pong');
    expect_echo($c, TEXT, "\xE2\x82\xAC!", 'message');
    end_ok($c);
} ],
[ 'client close without payload' => sub {
    my $c = open_echo(shift);
    $c->send_frame(opcode => CLOSE, payload => '');
    my($code, $reason, $f) = $c->expect_close(10);
    ok($f, 'server answers with a close frame');
    ok(!defined $code || $code == 1000, 'empty close answered with an empty close (or 1000)')
        or diag("code $code");
    ok($c->wait_eof(10), 'TCP closed');
} ],
;

plan tests => 2 * @cases;
WsTest::diag_to_stderr();

WsTest::run_cases(@cases);
