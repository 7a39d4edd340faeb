# WebSocketMaxConnections: the most WebSockets open at once in the whole
# server, over all its children.  A private httpd (two children, so the
# count is the server's, not one child's) allows 3: three handshakes get
# 101, the fourth 503 with Retry-After and a WS00001 log line; once one
# socket has closed, a new handshake gets 101 again.  With
# MOD_WS_DRIVER=thread the sockets are on worker threads.
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib "$FindBin::Bin/../lib";

use Apache::Test qw(-withtestmore);
use Test::More import => ["!plan"];
use Time::HiRes qw(time sleep);
use WsPrivate;
use WsTest;

my $MAX = 3;
my $DRIVER = ($ENV{MOD_WS_DRIVER} // '') eq 'thread'
    ? 'WebSocketDriver thread' : '';

my $BODY = <<"EOT";
LogLevel warn ws:info
WebSocketMaxConnections $MAX
<Location /echo>
    WebSocketHandler echo
    $DRIVER
</Location>
EOT

if (my $why = WsPrivate::unusable()) {
    plan skip_all => $why;
}
plan tests => 8;

my $srv = WsPrivate->new('maxconn', body => $BODY);
my($pid, $out, $rc) = $srv->start;
ok($pid, 'private httpd started') or diag("exit $rc: $out\n" . $srv->error_log);

my @open;
for (1 .. $MAX) {
    my($status, $sock) = $srv->handshake('/echo');
    push @open, $sock if $sock;
}
is(scalar(@open), $MAX, "$MAX handshakes get 101");

my($status, $sock, $head) = $srv->handshake('/echo');
is($status, 503, 'one more gets 503');
like($head // '', qr/^Retry-After: \d+\r$/mi, 'with Retry-After');

# the refusal is logged with its reason
my $deadline = time + 5;
sleep 0.1 while time < $deadline
    && $srv->error_log !~ /WS00001:.*\(503\).*WebSocketMaxConnections/;
like($srv->error_log, qr/WS00001:.*\(503\).*WebSocketMaxConnections/,
     'WS00001 names the limit');

# one socket goes: a place is free again once the server has seen it end
close(shift @open);
my $again = 0;
$deadline = time + 10;
while (time < $deadline) {
    my($st, $s) = $srv->handshake('/echo');
    if ($st == 101) {
        push @open, $s;
        $again = 1;
        last;
    }
    sleep 0.2;
}
ok($again, 'after one closed, a handshake gets 101 again');
($status) = $srv->handshake('/echo');
is($status, 503, 'and the next one 503 again');

close($_) for @open;
ok($srv->stop, 'stopped, every process gone');

WsPrivate->cleanup('maxconn') if Test::More->builder->is_passing;
