# mod_ws's startup warnings for event MPM settings that would refuse or
# close WebSockets: WS00060 (MaxConnectionsPerChild not 0), WS00061
# (MaxSpareThreads below MaxRequestWorkers with more than one child),
# WS00062 (AsyncRequestWorkerFactor below 50).  Each case starts a private
# httpd (the same binary and mod_ws.so as the suite, as the test user) from
# a minimal configuration written under t/logs, on a free port, and reads
# its error log:
#   misconfigured MPM + WebSocketHandler   -> each warning once, naming the fix
#   well-sized MPM + WebSocketHandler      -> none
#   misconfigured MPM, no WebSocketHandler -> none (mod_ws is not used)
# The suite's own server is not touched.
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib "$FindBin::Bin/../lib";

use Apache::Test qw(-withtestmore);
use Test::More import => ["!plan"];
use WsPrivate;
use WsTest;

my $MISCONFIGURED = <<'EOF';
<IfModule mpm_event_module>
    StartServers           1
    MaxConnectionsPerChild 50
    ServerLimit            4
    ThreadsPerChild        25
    MaxRequestWorkers      100
    MaxSpareThreads        50
</IfModule>
EOF

my $WELL_SIZED = <<'EOF';
<IfModule mpm_event_module>
    StartServers           1
    MaxConnectionsPerChild 0
    ServerLimit            4
    ThreadsPerChild        25
    MaxRequestWorkers      100
    MaxSpareThreads        100
    AsyncRequestWorkerFactor 400
</IfModule>
EOF

my $HANDLER = <<'EOF';
<Location /echo>
    WebSocketHandler echo
</Location>
EOF

my %WARNING = (
    WS00060 => qr/Set MaxConnectionsPerChild 0/,
    WS00061 => qr/MaxSpareThreads to at least/,
    WS00062 => qr/AsyncRequestWorkerFactor/,
);
my @IDS = sort keys %WARNING;

my @cases = (
    [ 'misconfigured MPM with a WebSocketHandler', $MISCONFIGURED, $HANDLER, 1 ],
    [ 'well-sized MPM with a WebSocketHandler',    $WELL_SIZED,    $HANDLER, 0 ],
    [ 'misconfigured MPM, no WebSocketHandler',    $MISCONFIGURED, '',       0 ],
);

if (my $why = WsPrivate::unusable()) {
    plan skip_all => $why;
}
plan tests => scalar @cases;
WsTest::diag_to_stderr();

my $n = 0;
for my $case (@cases) {
    my($name, $mpm, $handler, $warn) = @$case;
    subtest $name => sub {
        my $srv = WsPrivate->new('mpmwarn', tag => ++$n, mpm => $mpm,
                                 body => $handler);
        my $port = $srv->port;
        my($pid, $out, $rc) = $srv->start;
        ok($pid, "httpd started on port $port and resumed normal operations")
            or diag("exit status $rc; output:\n$out\nerror_log:\n" . $srv->error_log);
        if ($pid) {
            my $status = $srv->handshake_status('/echo');
            if ($handler) {
                is($status, 101, 'it serves WebSockets on /echo');
            }
            else {
                isnt($status, 101, 'no WebSocket on /echo (no WebSocketHandler)');
            }
            ok($srv->stop, 'stopped, every process gone');
        }
        my $log = $srv->error_log;
        my @ws_lines = grep { /\bWS0006\d\b/ } split /\n/, $log;
        for my $id (@IDS) {
            my @lines = grep { /\b$id\b/ } @ws_lines;
            if ($warn) {
                is(scalar(@lines), 1, "$id logged once") or diag(join "\n", @lines);
                like($lines[0] // '', $WARNING{$id}, "$id names the fix");
                like($lines[0] // '', qr/\[ws:warn\]/, "$id is a warning");
            }
            else {
                is(scalar(@lines), 0, "no $id") or diag(join "\n", @lines);
            }
        }
        # not also on the first configuration pass (to the terminal)
        unlike($out, qr/WS0006\d/, 'nothing of it on the start command\'s output')
            or diag($out);
        done_testing();
    };
}

WsPrivate->cleanup('mpmwarn') if Test::More->builder->is_passing;
