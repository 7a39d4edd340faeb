# The closing handshake initiated by the client. ws and wss.
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib "$FindBin::Bin/../lib";

use Apache::Test qw(-withtestmore);
use Test::More import => ["!plan"];
use WsTest;

use constant { CONT => 0, TEXT => 1, BIN => 2, CLOSE => 8, PING => 9, PONG => 10 };

sub open_echo {
    my $c = WsTest->connect(shift, '/echo');
    die "handshake failed: " . ($c->status_line // '') . "\n" unless $c->status == 101;
    return $c;
}

sub close_answered {
    my($c, $want, $name) = @_;
    my($code, $reason, $f) = $c->expect_close(10);
    ok($f, "$name: server answers with a close frame")
        or return diag($c->is_eof ? 'TCP closed without a close frame' : 'timeout');
    ok(!$f->{masked} && $f->{fin} && !$f->{rsv}, "$name: close frame well-formed");
    if (ref $want eq 'CODE') {
        ok($want->($code), "$name: close code " . ($code // 'none'));
    }
    else {
        is($code, $want, "$name: close code " . ($want // 'none'));
    }
    my @data = grep { $_->{opcode} == TEXT || $_->{opcode} == BIN } $c->skipped_frames;
    return ($code, \@data);
}

my @cases = (
[ 'close 1000 is echoed, then TCP closes' => sub {
    my $c = open_echo(shift);
    $c->send_close(1000, 'bye');
    close_answered($c, 1000, 'close 1000');
    ok($c->wait_eof(10), 'TCP closed by the server');
} ],
[ 'empty close answered with an empty close (or 1000)' => sub {
    my $c = open_echo(shift);
    $c->send_frame(opcode => CLOSE, payload => '');
    close_answered($c, sub { !defined $_[0] || $_[0] == 1000 }, 'empty close');
    ok($c->wait_eof(10), 'TCP closed by the server');
} ],
[ 'data after the close is ignored' => sub {
    my $c = open_echo(shift);
    $c->send_raw(WsTest::build_frame(opcode => CLOSE, payload => pack('n', 1000))
                 . WsTest::build_frame(opcode => TEXT, payload => 'ignored')
                 . WsTest::build_frame(opcode => PING, payload => 'ignored too'));
    my(undef, $data) = close_answered($c, 1000, 'close then data');
    is(scalar(@$data), 0, 'no echo of data sent after the close');
    my @after;
    while (my $f = $c->read_frame(3)) {
        last if $f->{eof};
        push @after, $f;
    }
    is(scalar(@after), 0, 'nothing after the close frame (no pong, no echo)');
    ok($c->is_eof, 'TCP closed by the server');
} ],
[ 'messages before the close are echoed first' => sub {
    my $c = open_echo(shift);
    $c->send_raw(WsTest::build_frame(opcode => TEXT, payload => 'one')
                 . WsTest::build_frame(opcode => BIN, payload => 'two')
                 . WsTest::build_frame(opcode => CLOSE, payload => pack('n', 1000)));
    my(undef, $data) = close_answered($c, 1000, 'data then close');
    is(join(',', map { $_->{payload} } @$data), 'one,two', 'both echoed before the close');
    ok($c->wait_eof(10), 'TCP closed by the server');
} ],
[ 'close in the middle of a fragmented message' => sub {
    my $c = open_echo(shift);
    $c->send_raw(WsTest::build_frame(opcode => TEXT, payload => 'half', fin => 0)
                 . WsTest::build_frame(opcode => CLOSE, payload => pack('n', 1000)));
    my(undef, $data) = close_answered($c, 1000, 'close mid-message');
    is(scalar(@$data), 0, 'the unfinished message is not echoed');
    ok($c->wait_eof(10), 'TCP closed by the server');
} ],
[ 'valid close codes are accepted' => sub {
    my $v = shift;
    for my $code (1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011,
                  3000, 3999, 4000, 4999) {
        my $c = open_echo($v);
        $c->send_close($code, "reason \xE2\x82\xAC");
        # the server echoes the code (or answers 1000); not a protocol error
        close_answered($c, sub { defined $_[0] && ($_[0] == $code || $_[0] == 1000) },
                       "close $code");
        ok($c->wait_eof(10), "close $code: TCP closed");
    }
} ],
[ 'close reason of 123 bytes (control frame limit)' => sub {
    my $c = open_echo(shift);
    $c->send_close(1000, 'r' x 123);
    close_answered($c, 1000, 'long reason');
    ok($c->wait_eof(10), 'TCP closed');
} ],
[ 'close written one byte at a time' => sub {
    my $c = open_echo(shift);
    $c->send_close(1000, 'slow', chunk => 1, delay => 0.002);
    close_answered($c, 1000, 'bytewise close');
    ok($c->wait_eof(10), 'TCP closed');
} ],
[ 'close, then the client shuts down its sending side' => sub {
    my $c = open_echo(shift);
    $c->send_close(1000);
    $c->shutdown_write;
    close_answered($c, 1000, 'half-closed client');
    ok($c->wait_eof(10), 'TCP closed');
} ],
[ 'client drops TCP without a close frame' => sub {
    my $v = shift;
    for (1 .. 5) {
        my $c = open_echo($v);
        $c->send_text('x' x 1000);
        $c->send_frame(opcode => TEXT, payload => 'unfinished', fin => 0);
        $c->close;
    }
    my $c = open_echo($v);
    $c->send_text('still fine');
    my $m = $c->read_message(10);
    ok($m && defined $m->{payload} && $m->{payload} eq 'still fine',
       'the server still echoes on a new connection');
} ],
);

plan tests => 2 * @cases;
WsTest::diag_to_stderr();

WsTest::run_cases(@cases);
