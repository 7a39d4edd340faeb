# One access-log line per WebSocket, written when it ends, with status 101.
# ws and wss; ended by the client's close, by a protocol error (server
# close) and by the client dropping TCP.
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib "$FindBin::Bin/../lib";

use Apache::Test qw(-withtestmore);
use Test::More import => ["!plan"];
use Time::HiRes qw(time sleep);
use WsTest;

my $log = WsTest::t_logs() . '/access_log';

sub lines_with {
    my $token = shift;
    open(my $fh, '<', $log) or return ();
    my @l = grep { index($_, $token) >= 0 } <$fh>;
    close $fh;
    return @l;
}

# wait until at least $n lines mention $token (or $t seconds pass)
sub wait_lines {
    my($token, $n, $t) = @_;
    my $deadline = time + $t;
    my @l;
    while (1) {
        @l = lines_with($token);
        return @l if @l >= $n || time >= $deadline;
        sleep 0.1;
    }
}

my @ends = (
    [ 'client close' => sub {
        my $c = shift;
        $c->send_close(1000);
        $c->expect_close(10);
        $c->wait_eof(10);
    } ],
    [ 'protocol error (server close)' => sub {
        my $c = shift;
        $c->send_frame(opcode => 3, payload => 'x');
        $c->expect_close(10);
        $c->wait_eof(10);
    } ],
    [ 'client drops TCP' => sub {
        my $c = shift;
        $c->close;
    } ],
);

plan tests => 2 * (@ends + 1);
WsTest::diag_to_stderr();

for my $v (WsTest::variants()) {
    for my $end (@ends) {
        my($how, $code) = @$end;
        subtest "$v: ended by $how" => sub {
            my $token = sprintf('al%d%06d', $$, int(rand(1e6)));
            my $c = WsTest->connect($v, "/echo?$token");
            is($c->status, 101, 'handshake') or return done_testing();
            $c->send_text('log me');
            my $m = $c->read_message(10);
            ok($m && ($m->{payload} // '') eq 'log me', 'echo');
            my @early = wait_lines($token, 1, 1);
            is(scalar(@early), 0, 'no access-log line while the WebSocket is open');
            $code->($c);
            my @l = wait_lines($token, 1, 10);
            sleep 0.5;             # a duplicate would show up now
            @l = lines_with($token);
            is(scalar(@l), 1, 'exactly one access-log line after it ended')
                or diag(join '', @l);
            like($l[0] // '', qr{"GET /echo\?\Q$token\E HTTP/1\.1" 101 }, 'request line and status 101');
            done_testing();
        };
    }
    subtest "$v: a declined request is logged as usual" => sub {
        my $token = sprintf('al%d%06d', $$, int(rand(1e6)));
        my $r = WsTest::http_request($v, 'GET', "/echo?$token");
        is($r->status, 200, 'GET without Upgrade');
        my @l = wait_lines($token, 1, 10);
        is(scalar(@l), 1, 'one access-log line');
        like($l[0] // '', qr{" 200 }, 'status 200');
        done_testing();
    };
}
