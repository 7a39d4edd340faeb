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
use File::Path qw(make_path remove_tree);
use File::Spec ();
use IO::Socket::INET ();
use POSIX ();
use Time::HiRes qw(time sleep);
use WsTest;

my $vars = WsTest::config()->{vars};
my $HTTPD = $vars->{httpd};
my $SO = File::Spec->rel2abs($ENV{MOD_WS_SO}
    || File::Spec->catfile($FindBin::Bin, File::Spec->updir, File::Spec->updir,
                           'mod_ws', '.libs', 'mod_ws.so'));

sub module_dir {
    return '/usr/lib/apache2/modules' if -d '/usr/lib/apache2/modules';
    my $apxs = $vars->{apxs} || 'apxs';
    chomp(my $q = `$apxs -q LIBEXECDIR 2>/dev/null` // '');
    return $q;
}
my $MODDIR = module_dir();

my $BASE = WsTest::t_logs() . "/mpmwarn.$$";
my %STARTED;            # pid => 1 for every httpd parent this file started

# never leave a private server running, whatever happened
END {
    my @pids = grep { WsTest::pid_alive($_) } keys %STARTED;
    if (@pids) {
        my @all = (@pids, map { WsTest::child_pids($_) } @pids);
        kill TERM => @pids;
        my @left = WsTest::wait_pids_gone(5, @all);
        kill KILL => @left if @left;
    }
}

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

sub free_port {
    my $s = IO::Socket::INET->new(Listen => 1, LocalAddr => '127.0.0.1',
                                  LocalPort => 0, Proto => 'tcp', ReuseAddr => 1)
        or die "cannot bind a free port: $!\n";
    my $port = $s->sockport;
    close $s;
    return $port;
}

sub slurp {
    my $file = shift;
    open(my $fh, '<', $file) or return '';
    local $/;
    my $s = <$fh>;
    close $fh;
    return $s // '';
}

sub spew {
    my($file, $text) = @_;
    open(my $fh, '>', $file) or die "cannot write $file: $!\n";
    print $fh $text;
    close $fh or die "cannot write $file: $!\n";
}

# run a command with stdout and stderr to $out; its exit status
sub run_cmd {
    my($out, @cmd) = @_;
    my $pid = fork;
    die "fork: $!\n" unless defined $pid;
    if (!$pid) {
        open(STDIN, '<', '/dev/null');
        open(STDOUT, '>>', $out) or POSIX::_exit(127);
        open(STDERR, '>&', \*STDOUT) or POSIX::_exit(127);
        exec(@cmd) or POSIX::_exit(127);
    }
    waitpid($pid, 0);
    return $?;
}

sub write_conf {
    my($dir, $port, $mpm, $handler) = @_;
    my $conf = <<"EOF";
# written by t/ws/mpmwarn.t
ServerRoot "$dir"
DefaultRuntimeDir "$dir"
PidFile "$dir/httpd.pid"
ErrorLog "$dir/error_log"
LogLevel warn
Listen 127.0.0.1:$port
ServerName 127.0.0.1
DocumentRoot "$dir"
<IfModule !mpm_event_module>
    LoadModule mpm_event_module "$MODDIR/mod_mpm_event.so"
</IfModule>
<IfModule !authz_core_module>
    LoadModule authz_core_module "$MODDIR/mod_authz_core.so"
</IfModule>
LoadModule ws_module "$SO"
$mpm
$handler
EOF
    spew("$dir/httpd.conf", $conf);
    return "$dir/httpd.conf";
}

sub read_pid {
    my $file = shift;
    my $s = slurp($file);
    return $s =~ /^(\d+)/ ? $1 : 0;
}

# start, wait until it serves, and return ($pid, $startup_output)
sub start_httpd {
    my($dir, $conf) = @_;
    my $out = "$dir/startup.out";
    my $rc = run_cmd($out, $HTTPD, '-d', $dir, '-f', $conf, '-k', 'start');
    my $deadline = time + 20;
    my $pid = 0;
    while (time < $deadline) {
        $pid = read_pid("$dir/httpd.pid");
        $STARTED{$pid} = 1 if $pid;
        last if $pid && WsTest::pid_alive($pid)
            && slurp("$dir/error_log") =~ /resuming normal operations/;
        last if $rc != 0;
        sleep 0.1;
    }
    my $ready = $pid && WsTest::pid_alive($pid)
        && slurp("$dir/error_log") =~ /resuming normal operations/;
    return ($ready ? $pid : 0, slurp($out), $rc);
}

sub stop_httpd {
    my($dir, $conf, $pid) = @_;
    my @procs = ($pid, WsTest::child_pids($pid));
    run_cmd("$dir/stop.out", $HTTPD, '-d', $dir, '-f', $conf, '-k', 'stop');
    my @left = WsTest::wait_pids_gone(15, @procs);
    if (@left) {
        kill TERM => @left;
        @left = WsTest::wait_pids_gone(5, @left);
        kill KILL => @left if @left;
    }
    return !@left;
}

# a WebSocket opening handshake on the private server: the status code
sub handshake_status {
    my $port = shift;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
                                  Proto => 'tcp', Timeout => 5) or return 0;
    print $s "GET /echo HTTP/1.1\r\nHost: 127.0.0.1:$port\r\nUpgrade: websocket\r\n"
        . "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        . "Sec-WebSocket-Version: 13\r\n\r\n";
    my $line = '';
    my $rin = '';
    vec($rin, fileno($s), 1) = 1;
    if (select(my $rout = $rin, undef, undef, 5) > 0) {
        sysread($s, $line, 512);
    }
    close $s;
    return $line =~ m{^HTTP/1\.1 (\d{3})} ? $1 : 0;
}

my @cases = (
    [ 'misconfigured MPM with a WebSocketHandler', $MISCONFIGURED, $HANDLER, 1 ],
    [ 'well-sized MPM with a WebSocketHandler',    $WELL_SIZED,    $HANDLER, 0 ],
    [ 'misconfigured MPM, no WebSocketHandler',    $MISCONFIGURED, '',       0 ],
);

if (!-x $HTTPD || !-r $SO || !-e "$MODDIR/mod_mpm_event.so") {
    plan skip_all => "needs httpd ($HTTPD), mod_ws.so ($SO) and mod_mpm_event.so in $MODDIR";
}
plan tests => scalar @cases;
WsTest::diag_to_stderr();

my $n = 0;
for my $case (@cases) {
    my($name, $mpm, $handler, $warn) = @$case;
    subtest $name => sub {
        my $dir = "$BASE/" . ++$n;
        make_path($dir);
        my $port = free_port();
        my $conf = write_conf($dir, $port, $mpm, $handler);
        my($pid, $out, $rc) = start_httpd($dir, $conf);
        ok($pid, "httpd started on port $port and resumed normal operations")
            or diag("exit status $rc; output:\n$out\nerror_log:\n" . slurp("$dir/error_log"));
        if ($pid) {
            my $status = handshake_status($port);
            if ($handler) {
                is($status, 101, 'it serves WebSockets on /echo');
            }
            else {
                isnt($status, 101, 'no WebSocket on /echo (no WebSocketHandler)');
            }
            ok(stop_httpd($dir, $conf, $pid), 'stopped, every process gone');
            delete $STARTED{$pid} unless WsTest::pid_alive($pid);
        }
        my $log = slurp("$dir/error_log");
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

remove_tree($BASE) if Test::More->builder->is_passing;
