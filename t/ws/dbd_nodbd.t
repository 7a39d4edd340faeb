# The dbd handler without mod_dbd: mod_ws still loads (mod_dbd's functions
# are optional functions), startup warns with WS00150, and every query is
# answered {"error":"mod_dbd is not loaded"} on a socket that stays open.
# A private httpd (t/lib/WsPrivate.pm) that loads no mod_dbd.  Also:
# "WebSocketHandler dbd" takes no arguments, which httpd -t reports.
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib "$FindBin::Bin/../lib";

use Apache::Test qw(-withtestmore);
use Test::More import => ["!plan"];
use JSON::PP ();
use WsPrivate;
use WsTest;

plan tests => 7;
WsTest::diag_to_stderr();

my $json = JSON::PP->new->utf8->canonical;
my $srv = WsPrivate->new('dbd_nodbd', body => <<'EOT');
<Location /dbd>
    WebSocketHandler dbd
    WebSocketDBDQuery one
</Location>
EOT
my($pid) = $srv->start;
ok($pid, 'httpd starts with a dbd location and no mod_dbd');
like($srv->error_log, qr/WS00150: WebSocketHandler dbd is configured but mod_dbd is not loaded/,
     'startup says so (WS00150)');

my $c = WsTest->connect('ws', '/dbd', port => $srv->port);
is($c->status, 101, 'the dbd location still takes WebSockets');
my @answers;
for my $id (1, 2) {
    $c->send_text($json->encode({ id => $id, query => 'one', params => [1] }));
    my $m = $c->read_message(10);
    push @answers, $m && $m->{payload} ? eval { $json->decode($m->{payload}) } : undef;
}
is_deeply(\@answers, [ map { { id => $_, error => 'mod_dbd is not loaded' } } 1, 2 ],
          'each query: the error, and the socket stays open');
$c->send_close(1000);
my($code) = $c->expect_close(10);
is($code, 1000, 'and closes normally');
ok($srv->stop, 'the server stops');

my $bad = WsPrivate->new('dbd_nodbd', tag => 'args', body => <<'EOT');
<Location /dbd>
    WebSocketHandler dbd some-argument
</Location>
EOT
my(undef, $out) = $bad->start;
like($out, qr/WebSocketHandler dbd: takes no arguments/,
     'WebSocketHandler dbd with an argument is a configuration error');
$bad->stop;
WsPrivate->cleanup('dbd_nodbd');
