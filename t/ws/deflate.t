# permessage-deflate (RFC 7692) with WebSocketDeflate: negotiation (several
# offers, bad parameters, window limits), compressed echo with and without
# context takeover, fragments sent byte by byte, small messages left
# uncompressed, and the peer's faults: a decompression bomb (1009), bad
# DEFLATE data and bad UTF-8 inside it (1007), RSV1 where it may not be
# (1002).  Frames are compressed and inflated here with Compress::Raw::Zlib,
# independently of the module.  ws and wss.
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib "$FindBin::Bin/../lib";

use Apache::Test qw(-withtestmore);
use Test::More import => ["!plan"];
use Compress::Raw::Zlib;
use WsTest;

use constant { CONT => 0, TEXT => 1, BIN => 2, CLOSE => 8, PING => 9, PONG => 10 };
use constant RSV1 => 4;

my $OFFER = 'permessage-deflate; client_max_window_bits';

sub open_ws {
    my($v, $path, $offer) = @_;
    my $c = WsTest->connect($v, $path,
        headers => [ defined $offer ? ('Sec-WebSocket-Extensions' => $offer) : () ]);
    die "handshake failed: " . ($c->status_line // '') . "\n" unless $c->status == 101;
    return $c;
}

# A compressor or decompressor for one side of a connection.
sub deflater {
    my($d, $st) = Compress::Raw::Zlib::Deflate->new(-WindowBits => -15,
        -AppendOutput => 1, -Level => 6);
    die "deflateInit: $st" unless $st == Z_OK;
    return $d;
}

sub inflater {
    my($i, $st) = Compress::Raw::Zlib::Inflate->new(-WindowBits => -15,
        -AppendOutput => 1, -ConsumeInput => 1);
    die "inflateInit: $st" unless $st == Z_OK;
    return $i;
}

# §7.2.1: compress, flush, drop the 00 00 ff ff tail.
sub compress_msg {
    my($d, $data) = @_;
    my $out = '';
    $d->deflate($data, $out) == Z_OK or die "deflate failed";
    $d->flush($out, Z_SYNC_FLUSH) == Z_OK or die "flush failed";
    substr($out, -4) eq "\x00\x00\xff\xff" or die "no sync flush tail";
    substr($out, -4) = '';
    return $out;
}

# §7.2.2: append the tail and inflate.
sub inflate_msg {
    my($i, $data) = @_;
    my $in = $data . "\x00\x00\xff\xff";
    my $out = '';
    my $st = $i->inflate($in, $out);
    die "inflate: $st" unless $st == Z_OK || $st == Z_BUF_ERROR;
    die "inflate left input" if length $in;
    return $out;
}

sub json_msg {
    my $n = shift;
    return join(',', map { qq({"id":$_,"user":"alice","room":"lobby","text":"caf\xC3\xA9 $_ $n"}) } 1 .. 20);
}

sub show {
    my $f = shift;
    return 'timeout' unless $f;
    return 'eof' if $f->{eof};
    return sprintf('opcode %d rsv %d fin %d len %d', $f->{opcode}, $f->{rsv}, $f->{fin},
                   length $f->{payload});
}

# The echo of a compressed message: one frame, RSV1, inflating to $want.
sub expect_deflated_echo {
    my($c, $inf, $op, $want, $name) = @_;
    my $f = $c->read_frame(20);
    unless ($f && !$f->{eof} && $f->{opcode} == $op && $f->{fin} && $f->{rsv} == RSV1) {
        fail("$name: one compressed frame back");
        diag(show($f));
        return undef;
    }
    my $got = eval { inflate_msg($inf, $f->{payload}) };
    ok(defined $got && $got eq $want, "$name: inflates to the message")
        or diag($@ || 'differs: ' . length($got // '') . ' vs ' . length($want) . ' bytes');
    return length $f->{payload};
}

sub expect_close_code {
    my($c, $want, $name) = @_;
    my($code, $reason, $f) = $c->expect_close(20);
    is($code, $want, "$name: close $want") or diag('reason ' . ($reason // '') .
        ($f ? '' : ', no close frame'));
    ok($c->wait_eof(10), "$name: TCP closed");
}

sub send_deflated {
    my($c, %a) = @_;
    return $c->send_frame(%a, rsv => RSV1);
}

my @cases = (
[ 'negotiation: default answers' => sub {
    my $v = shift;
    my $c = open_ws($v, '/deflate', $OFFER);
    is($c->header('Sec-WebSocket-Extensions'),
       'permessage-deflate; server_no_context_takeover; client_no_context_takeover; '
       . 'client_max_window_bits=15', 'no context takeover either way');
    $c = open_ws($v, '/ctxdeflate', $OFFER);
    is($c->header('Sec-WebSocket-Extensions'), 'permessage-deflate; client_max_window_bits=12',
       'context takeover, client window capped at 12');
    $c = open_ws($v, '/ctxdeflate', 'permessage-deflate');
    is($c->header('Sec-WebSocket-Extensions'), 'permessage-deflate',
       'no client_max_window_bits offered: none answered');
} ],
[ 'negotiation: offers declined, the handshake goes on' => sub {
    my $v = shift;
    for my $offer ('permessage-deflate; foo=1', 'permessage-deflate; server_max_window_bits=8',
                   'permessage-deflate; client_max_window_bits=16',
                   'permessage-deflate; server_no_context_takeover; server_no_context_takeover',
                   'x-webkit-deflate-frame', 'permessage-deflate; a="unterminated') {
        my $c = open_ws($v, '/deflate', $offer);
        ok(!defined $c->header('Sec-WebSocket-Extensions'), "101 without extension for '$offer'");
        $c->send_text('still works, uncompressed, long enough to be compressed back');
        my $f = $c->read_frame(10);
        ok($f && !$f->{eof} && !$f->{rsv}
           && $f->{payload} eq 'still works, uncompressed, long enough to be compressed back',
           'echo uncompressed') or diag(show($f));
    }
    my $c = open_ws($v, '/deflate', 'permessage-deflate; server_max_window_bits=8, '
                    . 'permessage-deflate; bogus, permessage-deflate; server_max_window_bits="10"');
    is($c->header('Sec-WebSocket-Extensions'),
       'permessage-deflate; server_no_context_takeover; client_no_context_takeover; '
       . 'server_max_window_bits=10', 'the first acceptable offer of three');
    # WebSocketDeflate off (the default): offers are ignored.
    $c = open_ws($v, '/echo', $OFFER);
    ok(!defined $c->header('Sec-WebSocket-Extensions'), 'off: no extension answered');
} ],
[ 'echo without context takeover' => sub {
    my $c = open_ws(shift, '/deflate', $OFFER);
    my @sizes;
    for my $n (1 .. 3) {
        my $m = json_msg($n);
        send_deflated($c, opcode => TEXT, payload => compress_msg(deflater(), $m));
        # each reply is made without context: a fresh inflater reads it
        push @sizes, expect_deflated_echo($c, inflater(), TEXT, $m, "message $n");
    }
    ok($sizes[0] && $sizes[0] < length(json_msg(1)) / 3, "compressed ($sizes[0] bytes)");
    my $b = join '', map { chr($_ % 7) } 1 .. 5000;
    send_deflated($c, opcode => BIN, payload => compress_msg(deflater(), $b));
    expect_deflated_echo($c, inflater(), BIN, $b, 'binary');
    $c->send_close(1000);
    is(($c->expect_close(10))[0], 1000, 'close 1000');
} ],
[ 'echo with context takeover' => sub {
    my $c = open_ws(shift, '/ctxdeflate', $OFFER);
    my($def, $inf) = (deflater(), inflater());
    my @sizes;
    for my $n (1 .. 5) {
        my $m = json_msg($n);
        send_deflated($c, opcode => TEXT, payload => compress_msg($def, $m));
        push @sizes, expect_deflated_echo($c, $inf, TEXT, $m, "message $n");
    }
    ok($sizes[4] && $sizes[4] < $sizes[0] / 2,
       "later replies refer back to earlier ones ($sizes[0] then $sizes[4] bytes)");
    $c->send_close(1000);
    is(($c->expect_close(10))[0], 1000, 'close 1000');
} ],
[ 'fragmented compressed message, one byte at a time, pings between' => sub {
    my $c = open_ws(shift, '/ctxdeflate', $OFFER);
    my($def, $inf) = (deflater(), inflater());
    my $m = json_msg(7);
    my $z = compress_msg($def, $m);
    my $third = int(length($z) / 3);
    my $wire = WsTest::build_frame(opcode => TEXT, rsv => RSV1, fin => 0,
                                   payload => substr($z, 0, $third))
             . WsTest::build_frame(opcode => PING, payload => 'mid')
             . WsTest::build_frame(opcode => CONT, fin => 0,
                                   payload => substr($z, $third, $third))
             . WsTest::build_frame(opcode => CONT, fin => 1,
                                   payload => substr($z, 2 * $third));
    $c->send_chunked($wire, 1, 0.0005);
    my $f = $c->read_frame(20);
    ok($f && !$f->{eof} && $f->{opcode} == PONG && !$f->{rsv} && $f->{payload} eq 'mid',
       'pong, uncompressed') or diag(show($f));
    expect_deflated_echo($c, $inf, TEXT, $m, 'reassembled');
    # and the next message still shares the context
    $m = json_msg(8);
    send_deflated($c, opcode => TEXT, payload => compress_msg($def, $m));
    expect_deflated_echo($c, $inf, TEXT, $m, 'next message');
} ],
[ 'small and uncompressed messages' => sub {
    my $c = open_ws(shift, '/deflate', $OFFER);
    $c->send_text('short');
    my $f = $c->read_frame(10);
    ok($f && !$f->{eof} && $f->{rsv} == 0 && $f->{payload} eq 'short',
       'a short reply goes out uncompressed (RSV1 clear)') or diag(show($f));
    send_deflated($c, opcode => TEXT, payload => compress_msg(deflater(), 'tiny'));
    $f = $c->read_frame(10);
    ok($f && !$f->{eof} && $f->{rsv} == 0 && $f->{payload} eq 'tiny',
       'a short compressed message is echoed uncompressed') or diag(show($f));
    my $m = json_msg(1);
    $c->send_text($m);
    expect_deflated_echo($c, inflater(), TEXT, $m, 'uncompressed in, compressed out');
    send_deflated($c, opcode => TEXT, payload => "\x00");
    $f = $c->read_frame(10);
    ok($f && !$f->{eof} && $f->{opcode} == TEXT && $f->{payload} eq '',
       'the empty message of §7.2.3.6') or diag(show($f));
} ],
[ 'decompression bomb: 1009' => sub {
    my $c = open_ws(shift, '/deflate', $OFFER);
    # 64 MiB of zeros is ~64 KiB compressed; the limit is 1 000 000
    my $d = deflater();
    my $z = '';
    my $zeros = "\0" x (1024 * 1024);
    for (1 .. 64) {
        my $chunk = $zeros;
        $d->deflate($chunk, $z) == Z_OK or die;
    }
    $d->flush($z, Z_SYNC_FLUSH);
    substr($z, -4) = '';
    ok(length($z) < 128 * 1024, 'bomb is small on the wire (' . length($z) . ' bytes)');
    send_deflated($c, opcode => BIN, payload => $z);
    expect_close_code($c, 1009, 'bomb');
} ],
[ 'peer faults: bad DEFLATE data, bad UTF-8 inside, RSV1 misplaced' => sub {
    my $v = shift;
    my $c = open_ws($v, '/deflate', $OFFER);
    send_deflated($c, opcode => BIN, payload => "\x07\x00");    # reserved block type
    expect_close_code($c, 1007, 'bad data');

    $c = open_ws($v, '/deflate', $OFFER);
    send_deflated($c, opcode => TEXT, payload => compress_msg(deflater(), "ok \xC3\x28 bad"));
    expect_close_code($c, 1007, 'bad UTF-8');

    $c = open_ws($v, '/deflate', $OFFER);
    my $z = compress_msg(deflater(), json_msg(1));
    $c->send_frame(opcode => TEXT, rsv => RSV1, fin => 0, payload => substr($z, 0, 10));
    $c->send_frame(opcode => CONT, rsv => RSV1, payload => substr($z, 10));
    expect_close_code($c, 1002, 'RSV1 on a continuation');

    $c = open_ws($v, '/deflate', $OFFER);
    $c->send_frame(opcode => PING, rsv => RSV1, payload => 'x');
    expect_close_code($c, 1002, 'RSV1 on a ping');

    # not negotiated: RSV1 is a protocol error as before
    $c = open_ws($v, '/deflate');
    send_deflated($c, opcode => TEXT, payload => compress_msg(deflater(), 'Hello'));
    expect_close_code($c, 1002, 'RSV1 without the extension');
} ],
);

plan tests => 2 * @cases;
WsTest::diag_to_stderr();

WsTest::run_cases(@cases);
