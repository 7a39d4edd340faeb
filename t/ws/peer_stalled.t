# A peer that sends but never reads: its echoes back up, the server stops
# reading it (backpressure), and its close frame can never leave.  On the
# reactor the idle timeout still runs, then the closing handshake's bound,
# then the connection is dropped: on /pinger (WebSocketIdleTimeout 3,
# WebSocketShutdownTimeout 3) within 3 + 3 + 3 s and a little.
#
# The thread driver writes with httpd's blocking writes, bounded by
# Timeout (300 s under Debian's apache2.conf), so this file is for the
# reactor (README, WebSocketDriver, says so).
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib "$FindBin::Bin/../lib";

use Apache::Test qw(-withtestmore);
use Test::More import => ["!plan"];
use Errno qw(EAGAIN EWOULDBLOCK EINTR);
use Socket qw(SOL_SOCKET SO_RCVBUF);
use Time::HiRes qw(time sleep);
use WsTest;

use constant { BIN => 2, TCP_ESTABLISHED => 1 };
my $BOUND = 3 + 3 + 3 + 4;

if (($ENV{MOD_WS_DRIVER} // '') eq 'thread') {
    plan skip_all => 'the thread driver is bounded by httpd\'s Timeout instead';
}
plan tests => 2 * 3;
WsTest::diag_to_stderr();

# The server's side of our connection in /proc/net/tcp: its state (1 =
# ESTABLISHED), or 0 once it is gone.  Asked on the server's side because
# our side may never see the end: the server's FIN waits behind the data we
# never read.
sub server_side_state {
    my($v, $sock) = @_;
    my $local = sprintf(':%04X', WsTest::port($v));
    my $peer = sprintf(':%04X', $sock->sockport);
    for my $file ('/proc/net/tcp', '/proc/net/tcp6') {
        open(my $fh, '<', $file) or next;
        while (my $l = <$fh>) {
            my @f = split ' ', $l;
            next unless @f > 3;
            return hex $f[3] if $f[1] =~ /\Q$local\E$/ && $f[2] =~ /\Q$peer\E$/;
        }
    }
    return 0;
}

for my $v (WsTest::variants()) {
    my $c = WsTest->connect($v, '/pinger');
    my $sock = $c->sock;
    setsockopt($sock, SOL_SOCKET, SO_RCVBUF, 4096);
    $sock->blocking(0);
    my $frame = WsTest::build_frame(opcode => BIN, payload => 'x' x 65536);
    my($sent, $last, $off, $retry) = (0, time, 0, 0);
    my $until = time + 20;
    while (time < $until && time - $last < 0.5) {
        my $want = length($frame) - $off;
        $want = $retry if $retry > $want;
        my $n = syswrite($sock, $frame, $want, $off);
        if (defined $n && $n > 0) {
            ($off, $retry, $last) = ($off + $n, 0, time);
            if ($off == length $frame) { $off = 0; $sent++ }
            next;
        }
        $retry = $want if $c->{tls};
        sleep 0.05;
    }
    ok($sent > 8, "$v: $sent frames of 64 KiB went out before the socket blocked");
    my $t0 = time;
    my $state = server_side_state($v, $sock);
    while (time - $t0 < $BOUND + 5 && $state == TCP_ESTABLISHED) {
        sleep 0.25;
        $state = server_side_state($v, $sock);
    }
    my $took = time - $t0;
    isnt($state, TCP_ESTABLISHED,
         sprintf("$v: the server ended the connection (its side: %s)",
                 $state ? "TCP state $state" : 'gone'));
    cmp_ok($took, '<', $BOUND, sprintf("$v: within %.1f s (bound %d s)", $took, $BOUND));
    close $sock;
}
