# A reader that stops reading must not hold up anybody else.  A "slow"
# socket on /echo sends 64 KiB binary messages without ever reading, until
# its writes would block (the server's echoes back up through both kernel
# buffers, so the server's writes to it meet backpressure and it stops
# reading it); meanwhile a "fast" socket served by the same child does 50
# round trips of a small text message (10 ms apart), each within 100 ms.
# Then the slow socket reads: every message it sent comes back intact and
# in order, so nothing was lost under backpressure.  ws and wss; with
# MOD_WS_DRIVER=thread the same on worker threads.  (Named so that it
# sorts before restart.t, which must run last.)
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib "$FindBin::Bin/../lib";

use Apache::Test qw(-withtestmore);
use Test::More import => ["!plan"];
use Errno qw(EAGAIN EWOULDBLOCK EINTR);
use Time::HiRes qw(time sleep);
use WsTest;

use constant { TEXT => 1, BIN => 2 };

my $MSG = 64 * 1024;            # bytes per slow message
my $MIN_MSGS = 64;              # write at least this many (4 MiB) ...
my $MAX_MSGS = 512;             # ... and at most 32 MiB in all
my $STALL = 0.5;                # no progress this long: the writes block
my $FLOOD_TIME = 20;            # bound for the whole flood
my $ROUNDS = 50;
my $BOUND = 0.100;              # seconds per round trip
my $PAUSE = 0.01;               # between round trips
my $SAME_CHILD_TRIES = 20;

# One 64 KiB payload per index; the index leads, the rest is a window
# into random bytes that moves with it, so no two messages are alike.
my $RANDOM = WsTest::random_bytes($MSG + 4096);
sub payload {
    my $i = shift;
    return pack('N', $i) . substr($RANDOM, ($i * 977) % 4096, $MSG - 4);
}

sub ms { sprintf('%.1f', 1000 * $_[0]) }

sub open_echo {
    my $v = shift;
    my $c = WsTest->connect($v, '/echo');
    die "$v: handshake failed (" . ($c->status_line // '') . ")\n" unless $c->status == 101;
    return $c;
}

sub close_ok {
    my($c, $name) = @_;
    $c->send_close(1000);
    my($code) = $c->expect_close(20);
    is($code, 1000, "$name: close 1000 echoed");
}

# Write $$wire from $$off on without ever reading: non-blocking writes,
# waiting for writability in steps of 50 ms.  Returns true when no byte
# went out for $STALL (the socket would block), false when all is written
# or at $deadline; $$off is how far it got.
sub write_until_blocked {
    my($c, $wire, $off, $deadline) = @_;
    my $sock = $c->sock;
    my $len = length $$wire;
    my $last_progress = time;
    while ($$off < $len) {
        my $want = $len - $$off > 65536 ? 65536 : $len - $$off;
        my $n = syswrite($sock, $$wire, $want, $$off);
        if (defined $n && $n > 0) {
            $c->{retry_len} = 0;
            $$off += $n;
            $last_progress = time;
            next;
        }
        if (!defined $n) {
            my $tls_retry = $c->{tls} && $IO::Socket::SSL::SSL_ERROR
                && ($IO::Socket::SSL::SSL_ERROR == IO::Socket::SSL::SSL_WANT_WRITE()
                    || $IO::Socket::SSL::SSL_ERROR == IO::Socket::SSL::SSL_WANT_READ());
            die "slow socket: write failed: $!\n"
                unless $tls_retry || $! == EAGAIN || $! == EWOULDBLOCK || $! == EINTR;
            # OpenSSL: the next write must offer at least these bytes again
            $c->{retry_len} = $want if $tls_retry;
        }
        my $now = time;
        return 1 if $now - $last_progress >= $STALL;
        return 0 if $now >= $deadline;
        my $win = '';
        vec($win, fileno($sock), 1) = 1;
        select(undef, my $wout = $win, undef, 0.05);
    }
    return 0;
}

my @RESULTS;

sub slow_reader_case {
    my $v = shift;

    # Two sockets served by the same child: open sockets until two share
    # one (with 2 children the third socket at the latest), the first is
    # the slow one, the second the fast one; the others are closed.
    my(%by_pid, $pair, $tries);
    my @all;
    for my $i (1 .. $SAME_CHILD_TRIES) {
        $tries = $i;
        my $c = open_echo($v);
        push @all, $c;
        my $pid = $c->serving_pid or next;
        push @{ $by_pid{$pid} }, $c;
        if (@{ $by_pid{$pid} } == 2) { $pair = $pid; last }
    }
    ok($pair, "$v: two sockets in the same child (pid " . ($pair // 'none')
              . ") after $tries connections") or die "no two sockets in one child\n";
    my($slow, $fast) = @{ $by_pid{$pair} };
    close_ok($_, "$v: extra socket") for grep { $_ != $slow && $_ != $fast } @all;
    @all = ();
    %by_pid = ();

    # both work before the flood
    for my $c ([slow => $slow], [fast => $fast]) {
        $c->[1]->send_text("warm up $c->[0]");
        my $m = $c->[1]->read_message(5);
        is($m && $m->{payload}, "warm up $c->[0]", "$v: $c->[0] socket echoes");
    }

    # the flood: whole frames, never reading the slow socket
    my $wire = '';
    my @ends;               # offset just past each frame
    my $off = 0;
    my $blocked = 0;
    my $deadline = time + $FLOOD_TIME;
    my $t0 = time;
    while (@ends < $MAX_MSGS) {
        # keep at least 8 frames queued, so a write never runs dry
        while (@ends < $MAX_MSGS && length($wire) - $off < 8 * ($MSG + 14)) {
            $wire .= WsTest::build_frame(opcode => BIN, payload => payload(scalar @ends));
            push @ends, length $wire;
        }
        $blocked = write_until_blocked($slow, \$wire, \$off, $deadline);
        last if ($blocked && @ends >= $MIN_MSGS) || time >= $deadline;
    }
    # the messages whose first byte went out (or is in a TLS write to be
    # retried); the others are never sent
    my $must = $off + ($slow->{retry_len} || 0);
    my $started = grep { $_ - ($MSG + 14) < $must } @ends;
    my $mib = $off / (1024 * 1024);
    ok($blocked, sprintf("$v: the slow socket's writes block after %.1f MiB (%d messages), %.1f s",
                         $mib, $started, time - $t0))
        or diag(sprintf('wrote %.1f MiB without blocking: the server reads on although '
                        . 'its echoes cannot be written', $mib));

    # round trips on the fast socket while the slow one is backed up
    my(@rtt, $bad);
    for my $i (1 .. $ROUNDS) {
        # spread over a while, not one burst: a periodic stall would show
        sleep $PAUSE;
        my $msg = "round trip $i";
        my $t = time;
        $fast->send_text($msg);
        my $r = $fast->read_message(5);
        my $dt = time - $t;
        push @rtt, $dt;
        unless ($r && !$r->{eof} && defined $r->{opcode} && $r->{opcode} == TEXT
                && $r->{payload} eq $msg) {
            $bad = "round trip $i: no echo within 5 s";
            last;
        }
    }
    ok(!$bad, "$v: $ROUNDS round trips echoed") or diag($bad);
    my @sorted = sort { $a <=> $b } @rtt;
    my $max = $sorted[-1] // 0;
    my $p50 = $sorted[int($#sorted / 2)] // 0;
    my $over = grep { $_ >= $BOUND } @rtt;
    push @RESULTS, sprintf('%s: round trip max %s ms, p50 %s ms (%d over %d ms), slow socket %.1f MiB in flight',
                           $v, ms($max), ms($p50), $over, 1000 * $BOUND, $mib);
    ok($max < $BOUND, sprintf("$v: every round trip < %d ms while a reader stalls (max %s ms, p50 %s ms)",
                              1000 * $BOUND, ms($max), ms($p50)))
        or diag("$over of " . @rtt . " round trips took $BOUND s or more; load: "
                . `cat /proc/loadavg`);
    # now the slow socket reads: the rest of the started message, then all
    # echoes, in order and intact
    my $end = $started ? $ends[$started - 1] : 0;
    my $rest = $end > $off ? substr($wire, $off, $end - $off) : '';
    ok($slow->send_raw($rest, 30), "$v: the rest of the last message sent (" . length($rest) . ' bytes)');
    my($good, $first_bad) = (0, undef);
    for my $i (0 .. $started - 1) {
        my $f = $slow->read_frame(30);
        if ($f && !$f->{eof} && $f->{opcode} == BIN && $f->{fin} && $f->{payload} eq payload($i)) {
            $good++;
            next;
        }
        $first_bad = sprintf('message %d: %s', $i,
            !$f ? 'timeout' : $f->{eof} ? 'eof' : sprintf('opcode %d, %d bytes, index %s', $f->{opcode},
                length $f->{payload}, length($f->{payload}) >= 4 ? unpack('N', $f->{payload}) : '-'));
        last;
    }
    is($good, $started, "$v: the slow socket gets all $started messages back, intact and in order")
        or diag($first_bad);
    close_ok($slow, "$v: slow socket");
    close_ok($fast, "$v: fast socket");
}

plan tests => 2;
WsTest::diag_to_stderr();

for my $v (WsTest::variants()) {
    subtest "$v: a stalled reader does not delay another socket" => sub {
        my $ok = eval { slow_reader_case($v); 1 };
        ok(0, 'no exception') or diag($@) unless $ok;
        done_testing();
    };
}
diag($_) for @RESULTS;
