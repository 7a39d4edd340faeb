# The harness itself: the server runs with mod_ws loaded, plain HTTP and
# HTTPS (the wss vhost) both answer, and mod_reqtimeout is loaded.
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib "$FindBin::Bin/../lib";

use Apache::Test qw(-withtestmore);
use Test::More import => ["!plan"];
use WsTest;

plan tests => 11;
WsTest::diag_to_stderr();

for my $v (WsTest::variants()) {
    my $r = WsTest::http_request($v, 'GET', '/plain');
    is($r->status, 200, "$v: GET /plain is 200");
    is($r->body, "mod_ws test page: plain\n", "$v: static content");
    my $e = WsTest::http_request($v, 'GET', '/echo');
    is($e->status, 200, "$v: GET /echo without Upgrade is served by the static file");
}

my $cfg = Apache::Test::basic_config();
isnt(WsTest::port('wss'), WsTest::port('ws'), 'separate TLS port');

# the generated configuration really loads mod_reqtimeout, mod_ssl and
# mod_ws (asked from httpd itself with the generated httpd.conf)
my $v = $cfg->{vars};
my $cmd = "$v->{httpd} -d $v->{serverroot} -f $v->{t_conf_file} -t -D DUMP_MODULES 2>&1";
my $mods = `$cmd`;
like($mods, qr/^\s*reqtimeout_module\b/m, 'mod_reqtimeout is loaded (its filter is what idle.t defeats)');
like($mods, qr/^\s*ssl_module\b/m, 'mod_ssl is loaded (wss is tested)');
like($mods, qr/^\s*ws_module\b/m, 'mod_ws is loaded');
my $conf = join '', map { local @ARGV = ($_); <> } grep { -f } ($v->{t_conf_file});
my $so = $ENV{MOD_WS_SO} || 'mod_ws.so';
like($conf, qr/LoadModule\s+ws_module\s+"\Q$so\E"/, "from $so");
