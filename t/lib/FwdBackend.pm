# The forward handler's test backend (fwd_backend.py beside this file):
# start it on 127.0.0.1 at the port t/TEST.PL gave the config, stop it by
# its PID when the test file ends.
package FwdBackend;

use strict;
use warnings FATAL => 'all';

use File::Basename qw(dirname);
use IO::Socket::INET ();
use POSIX ();
use Time::HiRes qw(sleep);
use WsTest;

my $pid;

sub port {
    my $vars = WsTest::config()->{vars};
    return $vars->{wsfwdport} || WsTest::port('ws') + 15;
}

# Start it and wait until it listens; dies when it does not.
sub start {
    my $port = port();
    my $script = dirname(__FILE__) . '/fwd_backend.py';
    my $python = -x '/usr/bin/python3' ? '/usr/bin/python3' : 'python3';
    $pid = fork();
    die "fork: $!" unless defined $pid;
    if (!$pid) {
        open(STDOUT, '>', '/dev/null');
        exec($python, $script, $port) or POSIX::_exit(127);
    }
    for (1 .. 100) {
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
                                      Proto => 'tcp', Timeout => 1);
        if ($s) { close $s; return $port }
        sleep 0.1;
    }
    stop();
    die "the backend did not start on 127.0.0.1:$port\n";
}

sub stop {
    return unless $pid;
    kill 'TERM', $pid;
    waitpid($pid, 0);
    $pid = undef;
}

END {
    local $?;               # keep the test's exit status
    stop();
}

# GET a path of the backend itself (its statistics and event log).
sub get {
    my $path = shift;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => port(),
                                  Proto => 'tcp', Timeout => 5)
        or die "backend: $!";
    print $s "GET $path HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    local $/;
    my $r = <$s> // '';
    close $s;
    $r =~ s/^.*?\r\n\r\n//s;
    return $r;
}

# TCP connections the backend accepted so far.
sub connections {
    my $st = get('/stats');
    return $st =~ /connections (\d+)/ ? $1 : die "backend stats: $st\n";
}

1;
