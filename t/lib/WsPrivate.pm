package WsPrivate;
# A private httpd for tests that need a configuration of their own (MPM
# settings, server-wide directives): the suite's httpd binary and mod_ws.so,
# run as the test user from a minimal configuration written under t/logs,
# on a free port.  The suite's own server is not touched.
#
#   my $srv = WsPrivate->new('maxconn', body => $text);   # mpm => $text too
#   my($pid, $out, $rc) = $srv->start;      # $pid 0: it did not come up
#   $srv->handshake_status('/echo');         # 101, 503, ...
#   $srv->stop;                              # true when every process is gone
#
# Every server started is stopped at the latest when the test ends.

use strict;
use warnings;

use File::Path qw(make_path remove_tree);
use File::Spec ();
use FindBin;
use IO::Socket::INET ();
use POSIX ();
use Time::HiRes qw(time sleep);

use WsTest;

my %STARTED;            # pid => 1 for every httpd parent started here

END {
    my @pids = grep { WsTest::pid_alive($_) } keys %STARTED;
    if (@pids) {
        my @all = (@pids, map { WsTest::child_pids($_) } @pids);
        kill TERM => @pids;
        my @left = WsTest::wait_pids_gone(5, @all);
        kill KILL => @left if @left;
    }
}

sub vars { WsTest::config()->{vars} }

sub httpd { vars()->{httpd} }

sub module_so {
    return File::Spec->rel2abs($ENV{MOD_WS_SO}
        || File::Spec->catfile($FindBin::Bin, File::Spec->updir,
                               File::Spec->updir, 'mod_ws', '.libs',
                               'mod_ws.so'));
}

sub module_dir {
    return '/usr/lib/apache2/modules' if -d '/usr/lib/apache2/modules';
    my $apxs = vars()->{apxs} || 'apxs';
    chomp(my $q = `$apxs -q LIBEXECDIR 2>/dev/null` // '');
    return $q;
}

# Why a private server cannot run here, or '' when it can.
sub unusable {
    my $dir = module_dir();
    return '' if -x httpd() && -r module_so() && -e "$dir/mod_mpm_event.so";
    return 'needs httpd (' . httpd() . '), mod_ws.so (' . module_so()
        . ") and mod_mpm_event.so in $dir";
}

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

# A small event MPM sized for WebSockets on the reactor: two children.
our $DEFAULT_MPM = <<'EOT';
<IfModule mpm_event_module>
    StartServers           2
    ServerLimit            2
    ThreadsPerChild        10
    MaxRequestWorkers      20
    MinSpareThreads        5
    MaxSpareThreads        20
    AsyncRequestWorkerFactor 100
    MaxConnectionsPerChild 0
</IfModule>
EOT

# A server in t/logs/NAME.PID/TAG with the MPM section (default
# $DEFAULT_MPM) and body given.
sub new {
    my($class, $name, %a) = @_;
    my $dir = WsTest::t_logs() . "/$name.$$/" . ($a{tag} // 'server');
    make_path($dir);
    my $self = bless { dir => $dir, port => free_port() }, $class;
    my $mods = module_dir();
    my $so = module_so();
    my $conf = <<"EOT";
# written by $FindBin::Script
ServerRoot "$dir"
DefaultRuntimeDir "$dir"
PidFile "$dir/httpd.pid"
ErrorLog "$dir/error_log"
LogLevel @{[ $a{loglevel} // 'warn' ]}
Listen 127.0.0.1:$self->{port}
ServerName 127.0.0.1
DocumentRoot "$dir"
<IfModule !mpm_event_module>
    LoadModule mpm_event_module "$mods/mod_mpm_event.so"
</IfModule>
<IfModule !authz_core_module>
    LoadModule authz_core_module "$mods/mod_authz_core.so"
</IfModule>
LoadModule ws_module "$so"
@{[ $a{mpm} // $DEFAULT_MPM ]}
@{[ $a{body} // '' ]}
EOT
    $self->{conf} = "$dir/httpd.conf";
    spew($self->{conf}, $conf);
    return $self;
}

sub dir  { $_[0]->{dir} }
sub port { $_[0]->{port} }
sub pid  { $_[0]->{pid} }
sub error_log { slurp("$_[0]->{dir}/error_log") }

# start, wait until it serves; ($pid or 0, the start command's output, its
# exit status)
sub start {
    my $self = shift;
    my $dir = $self->{dir};
    my $out = "$dir/startup.out";
    my $rc = run_cmd($out, httpd(), '-d', $dir, '-f', $self->{conf}, '-k',
                     'start');
    my $deadline = time + 20;
    my $pid = 0;
    while (time < $deadline) {
        $pid = slurp("$dir/httpd.pid") =~ /^(\d+)/ ? $1 : 0;
        $STARTED{$pid} = 1 if $pid;
        last if $pid && WsTest::pid_alive($pid)
            && $self->error_log =~ /resuming normal operations/;
        last if $rc != 0;
        sleep 0.1;
    }
    my $ready = $pid && WsTest::pid_alive($pid)
        && $self->error_log =~ /resuming normal operations/;
    $self->{pid} = $ready ? $pid : 0;
    return ($self->{pid}, slurp($out), $rc);
}

# stop; true when every process of it is gone
sub stop {
    my $self = shift;
    my $pid = $self->{pid} or return 1;
    my @procs = ($pid, WsTest::child_pids($pid));
    run_cmd("$self->{dir}/stop.out", httpd(), '-d', $self->{dir}, '-f',
            $self->{conf}, '-k', 'stop');
    my @left = WsTest::wait_pids_gone(15, @procs);
    if (@left) {
        kill TERM => @left;
        @left = WsTest::wait_pids_gone(5, @left);
        kill KILL => @left if @left;
    }
    delete $STARTED{$pid} unless WsTest::pid_alive($pid);
    return !@left;
}

# An opening handshake to PATH: (status code or 0, the socket, left open
# when the answer was 101)
sub handshake {
    my($self, $path) = @_;
    my $port = $self->{port};
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
                                  Proto => 'tcp', Timeout => 5) or return (0);
    print $s "GET $path HTTP/1.1\r\nHost: 127.0.0.1:$port\r\n"
        . "Upgrade: websocket\r\nConnection: Upgrade\r\n"
        . "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        . "Sec-WebSocket-Version: 13\r\n\r\n";
    my $head = '';
    my $rin = '';
    vec($rin, fileno($s), 1) = 1;
    if (select(my $rout = $rin, undef, undef, 5) > 0) {
        sysread($s, $head, 4096);
    }
    my $status = $head =~ m{^HTTP/1\.1 (\d{3})} ? $1 : 0;
    close $s unless $status == 101;
    return ($status, $status == 101 ? $s : undef, $head);
}

sub handshake_status {
    my($self, $path) = @_;
    my($status) = $self->handshake($path // '/echo');
    return $status;
}

# remove every server directory of this test file (when it passed)
sub cleanup {
    my($class, $name) = @_;
    remove_tree(WsTest::t_logs() . "/$name.$$");
}

1;
