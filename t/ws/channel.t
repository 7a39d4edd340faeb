# Fan-out across child processes: 40 subscribers on /fanout (channel
# "fanout"), spread over at least 4 httpd children (each hello names the
# child: id PID-N), and 10 concurrent publishers x 200 messages: five are
# WebSockets on /fanout (one sends binary frames), five POST to
# /publish/fanout on one kept-alive connection each (one as
# application/octet-stream).  Every subscriber must receive every message
# exactly once, with its type and bytes intact, and each publisher's
# messages in the order they were sent; the WebSocket publishers are
# subscribers too (WebSocketChannelEcho on) and must see all 2000 as well.
# ws and wss; MOD_WS_DRIVER=thread the same on worker threads.
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib "$FindBin::Bin/../lib";

use Apache::Test qw(-withtestmore);
use Test::More import => ["!plan"];
use POSIX ();
use Time::HiRes qw(time sleep);
use WsTest;
use WsChannel;

use constant { TEXT => 1, BIN => 2 };

my $SUBS = 40;
my $MIN_CHILDREN = 4;
my $MAX_TRIES = 200;            # sockets opened at most to reach the spread
my $PUBLISHERS = 10;            # 0..4 WebSocket, 5..9 POST
my $MSGS = 200;
my $TOTAL = $PUBLISHERS * $MSGS;
my $DELIVERY_BOUND = 90;        # seconds for all of it to arrive (2 shared cores)
my $QUIET = 0.5;                # then nothing more may come

sub is_ws_pub  { $_[0] < 5 }
sub is_bin_pub { $_[0] == 4 || $_[0] == 9 }

# publisher p's message seq: distinct lengths, the tag first
sub message {
    my($p, $seq) = @_;
    my $m = sprintf('P%02d %04d ', $p, $seq) . ('abcdefghij' x 5 . "\xC3\xA9") x ($seq % 7);
    return is_bin_pub($p) ? "\x00\xFF" . $m : $m;
}

# "P03 0017 ..." -> (3, 17)
sub tag_of {
    my $payload = shift;
    return $payload =~ /^(?:\x00\xFF)?P(\d\d) (\d{4}) / ? ($1 + 0, $2 + 0) : ();
}

# Checks one subscriber's stream as it arrives.
sub new_checker { return { next => [(0) x $PUBLISHERS], count => 0, errors => [] } }

sub check_frame {
    my($st, $f) = @_;
    $st->{count}++;
    my $err;
    my($p, $seq) = tag_of($f->{payload});
    if (!defined $p || $p >= $PUBLISHERS) {
        $err = 'untagged message: ' . substr($f->{payload}, 0, 30);
    }
    elsif (!$f->{fin}) {
        $err = "P$p $seq: fragmented";
    }
    elsif ($seq != $st->{next}->[$p]) {
        $err = $seq < $st->{next}->[$p]
            ? "P$p $seq again or late (expected $st->{next}->[$p])"
            : "P$p $seq before $st->{next}->[$p]";
        $st->{next}->[$p] = $seq + 1 if $seq > $st->{next}->[$p];
    }
    else {
        $st->{next}->[$p]++;
        my $want_op = is_bin_pub($p) ? BIN : TEXT;
        $err = "P$p $seq: opcode $f->{opcode}, want $want_op" if $f->{opcode} != $want_op;
        $err = "P$p $seq: payload differs" if !$err && $f->{payload} ne message($p, $seq);
    }
    push @{ $st->{errors} }, $err if $err && @{ $st->{errors} } < 5;
    $st->{bad}++ if $err;
}

# --------------------------------------------------------------------------
# publishers, each in its own process

# Runs in the forked process; reports on $res (one line each) and never
# returns.
sub publisher_main {
    my($v, $p, $res, $go) = @_;
    my $say = sub { syswrite($res, "$p @_\n") };
    my $ok = eval {
        if (is_ws_pub($p)) {
            my $c = WsChannel::subscriber($v, '/fanout');
            $say->("ready $c->{pid}");
            sysread($go, my $x, 1);       # EOF: go
            my $st = new_checker();
            for my $seq (0 .. $MSGS - 1) {
                my $m = message($p, $seq);
                my $sent = is_bin_pub($p) ? $c->send_binary($m) : $c->send_frame(opcode => TEXT, payload => $m);
                die "send $seq failed: " . ($c->{write_error} // '?') . "\n" unless $sent;
            }
            # a subscriber like the others: all 2000, once each, in order
            WsChannel::pump([$c], $DELIVERY_BOUND, sub { check_frame($st, $_[1]) },
                            sub { $st->{count} >= $TOTAL });
            WsChannel::pump([$c], $QUIET, sub { check_frame($st, $_[1]) });
            if ($st->{count} < $TOTAL) {
                # who is stuck: the queues of both ends of this socket
                my $lp = $c->sock->sockport;
                my $ss = `ss -tn '( sport = :$lp or dport = :$lp )' 2>&1`;
                $ss =~ s/\s+/ /g;
                unshift @{ $st->{errors} }, "ss: $ss; unparsed bytes " . length($c->{rbuf});
            }
            $say->(sprintf('done sent=%d got=%d bad=%d %s', $MSGS, $st->{count}, $st->{bad} // 0,
                           join('; ', @{ $st->{errors} })));
            $c->send_close(1000);
        }
        else {
            my $h = WsChannel::http_client($v);
            # the connection is made before the start, like the sockets'
            $h->request('GET', '/plain');
            $say->('ready http');
            sysread($go, my $x, 1);
            my $bad = '';
            for my $seq (0 .. $MSGS - 1) {
                my $m = message($p, $seq);
                my $r = $h->request('POST', '/publish/fanout', $m,
                                    type => is_bin_pub($p) ? 'application/octet-stream'
                                                           : 'text/plain; charset=utf-8');
                my $j = $r->{json} || {};
                my $want = is_bin_pub($p) ? 'binary' : 'text';
                unless ($r->{status} == 200 && ($j->{channel} // '') eq 'fanout'
                        && ($j->{type} // '') eq $want && ($j->{bytes} // -1) == length $m) {
                    $bad = "POST $seq: $r->{status} $r->{body}";
                    last;
                }
            }
            $say->(sprintf('done sent=%d connects=%d bad=%d %s', $MSGS, $h->connects,
                           $bad ? 1 : 0, $bad));
            $h->close;
        }
        1;
    };
    unless ($ok) {
        (my $e = $@) =~ s/\s+/ /g;
        $say->("error $e");
    }
    POSIX::_exit(0);
}

sub fanout_case {
    my $v = shift;

    my $t0 = time;
    my @subs = WsChannel::spread_subscribers($v, '/fanout', $SUBS, $MIN_CHILDREN, $MAX_TRIES);
    my %pids;
    $pids{ $_->{pid} }++ for @subs;
    ok(keys(%pids) >= $MIN_CHILDREN,
       sprintf('%d subscribers over %d children (%s)', scalar @subs, scalar keys %pids,
               join(' ', map { "$_:$pids{$_}" } sort keys %pids)));
    my %ids = map { $_->{id} => 1 } @subs;
    is(scalar keys %ids, scalar @subs, 'every connection id is unique');
    my @wrong = grep { !(ref $_->{channels} eq 'ARRAY' && "@{ $_->{channels} }" eq 'fanout'
                         && !defined $_->{user}) } @subs;
    ok(!@wrong, 'every hello: channels ["fanout"], user null')
        or diag($wrong[0]->{hello_text});
    # the id's pid is the child that really holds the socket
    my @mismatch = grep { my $sp = $_->serving_pid; $sp && $sp != $_->{pid} } @subs[0 .. 9];
    ok(!@mismatch, 'the pid in the id is the serving child')
        or diag("id $mismatch[0]->{id}, served by " . $mismatch[0]->serving_pid);

    pipe(my $res_r, my $res_w) or die "pipe: $!";
    pipe(my $go_r, my $go_w) or die "pipe: $!";
    my @kids;
    for my $p (0 .. $PUBLISHERS - 1) {
        my $pid = fork;
        die "fork: $!" unless defined $pid;
        if (!$pid) {
            close $res_r;
            close $go_w;
            # the subscribers stay the parent's: publisher_main ends with
            # _exit, so no destructor touches their sockets
            publisher_main($v, $p, $res_w, $go_r);
        }
        push @kids, $pid;
    }
    close $res_w;
    close $go_r;

    my(%ready, %done, @lines);
    my $rbuf = '';
    my $read_results = sub {
        my($until, $cond) = @_;
        while (time < $until) {
            my $rin = '';
            vec($rin, fileno($res_r), 1) = 1;
            last unless select(my $rout = $rin, undef, undef, $until - time) > 0;
            my $n = sysread($res_r, my $chunk, 4096);
            last unless $n;
            $rbuf .= $chunk;
            while ($rbuf =~ s/^(\d+) (\w+) ?(.*)\n//) {
                my($p, $what, $rest) = ($1, $2, $3);
                push @lines, "P$p $what $rest";
                $ready{$p} = $rest if $what eq 'ready';
                $done{$p} = $rest if $what eq 'done' || $what eq 'error';
                $done{$p} = "error $rest" if $what eq 'error';
                $ready{$p} //= 'error' if $what eq 'error';
            }
            return 1 if $cond && $cond->();
        }
        return 0;
    };
    $read_results->(time + 30, sub { keys(%ready) == $PUBLISHERS });
    is(scalar keys %ready, $PUBLISHERS, "$PUBLISHERS publishers connected")
        or diag(join "\n", @lines);
    my %pub_pids;
    $pub_pids{$_}++ for grep { /^\d+$/ } values %ready;
    note('WebSocket publishers in children ' . join(' ', sort keys %pub_pids));

    # go
    my $t_go = time;
    close $go_w;
    my @st = map { new_checker() } @subs;
    my $took = WsChannel::pump(\@subs, $DELIVERY_BOUND, sub { check_frame($st[$_[0]], $_[1]) },
                               sub { !grep { $_->{count} < $TOTAL } @st });
    WsChannel::pump(\@subs, $QUIET, sub { check_frame($st[$_[0]], $_[1]) });
    my $rate = $took > 0 ? $TOTAL * $SUBS / $took : 0;

    my @short = grep { $st[$_]->{count} != $TOTAL } 0 .. $#subs;
    ok(!@short, sprintf('each of %d subscribers got %d messages (%.1f s, %.0f deliveries/s)',
                        scalar @subs, $TOTAL, $took, $rate))
        or diag(join "\n", map { sprintf('subscriber %s (%s): %d messages%s', $subs[$_]->{id},
                                         $subs[$_]->{ended} // 'open', $st[$_]->{count},
                                         $st[$_]->{errors}->[0] ? ", $st[$_]->{errors}->[0]" : '') }
                    @short[0 .. ($#short > 4 ? 4 : $#short)]);
    my @bad = grep { $st[$_]->{bad} } 0 .. $#subs;
    ok(!@bad, 'every message exactly once, intact, in each publisher\'s order')
        or diag(join "\n", map { "subscriber $subs[$_]->{id}: " . join('; ', @{ $st[$_]->{errors} }) }
                    @bad[0 .. ($#bad > 4 ? 4 : $#bad)]);
    my @incomplete = grep { my $s = $_; grep { $_ != $MSGS } @{ $s->{next} } } @st;
    ok(!@incomplete, "every subscriber saw sequence 0..$MSGS-1 of every publisher");

    # the publishers' own reports
    $read_results->(time + $DELIVERY_BOUND, sub { keys(%done) == $PUBLISHERS });
    for my $p (0 .. $PUBLISHERS - 1) {
        my $r = $done{$p} // 'no report';
        my $kind = is_ws_pub($p) ? 'WebSocket' : 'POST';
        if (is_ws_pub($p)) {
            like($r, qr/^sent=$MSGS got=$TOTAL bad=0/, "publisher $p ($kind): sent $MSGS, got all $TOTAL back in order");
        }
        else {
            like($r, qr/^sent=$MSGS connects=1 bad=0/, "publisher $p ($kind): $MSGS POSTs answered 200 on one connection");
        }
    }
    for my $pid (@kids) {
        waitpid($pid, 0);
    }
    $_->send_close(1000) for grep { !$_->{ended} } @subs;
    $_->close for @subs;
    note(sprintf('%s: %d deliveries in %.2f s from the start signal (%.2f s in all)',
                 $v, $TOTAL * $SUBS, $took, time - $t0));
}

plan tests => 2;
WsTest::diag_to_stderr();

WsTest::run_cases(['40 subscribers in 4+ children, 10 publishers x 200' => \&fanout_case]);
