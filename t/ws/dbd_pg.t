# The dbd handler on a real PostgreSQL server, which this script starts
# itself (initdb under t/pg, a Unix socket there, no TCP port) and stops by
# PID at the end.  The vhosts dbd_pg and dbd_pg_ssl (t/conf/extra.conf.in)
# use it with DBDMax 2.
#  - the cases of t/ws/dbd.t (DbdTest::cases), plain and TLS;
#  - the server stopped mid-test: queries answer an error, the socket stays
#    open, and after the server is started again queries work again, with
#    no restart of httpd;
#  - 20 clients at once running a 2 s pg_sleep with DBDMax 2 and
#    WebSocketDBDTimeout 1: each gets its rows or "busy" within the bound,
#    and an echo socket in the same child keeps answering within 100 ms.
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib "$FindBin::Bin/../lib";

use Apache::Test qw(-withtestmore);
use Test::More import => ["!plan"];
use Time::HiRes qw(time sleep);
use DbdTest;
use WsTest;

my @variants = ('dbd_pg', 'dbd_pg_ssl');
my @cases = DbdTest::cases();
plan tests => @variants * (@cases + 3);
WsTest::diag_to_stderr();

my $started = eval { DbdTest::pg_setup() };
die "cannot start PostgreSQL: $@" unless $started;
END { DbdTest::pg_stop() }

sub restart_case {
    my $v = shift;
    my $c = DbdTest::open_ws($v);
    is_deeply(DbdTest::run($c, 1, 'one', 1)->{rows}, [[ '1', 'first', undef ]],
              'a query before the stop');
    ok(DbdTest::pg_stop(), 'PostgreSQL stopped');
    for my $i (1 .. 3) {
        my $a = DbdTest::run($c, "down$i", 'one', 1);
        ok($a && defined $a->{error} && !$a->{rows},
           "server down: an error ($i): " . ($a ? $a->{error} // 'rows!' : 'no answer'));
        is($a && $a->{id}, "down$i", 'with its id');
    }
    ok(DbdTest::pg_start(), 'PostgreSQL started again');
    my $a = DbdTest::run($c, 'up', 'one', 2);
    is_deeply($a, { id => 'up', columns => [qw(id name note)],
                    rows => [[ '2', 'second', 'two' ]] },
              'the first query after the restart works')
        or diag(explain($a));
    # every pooled handle of every child has seen the restart by now
    my @more = map { DbdTest::run($c, "m$_", $_ % 2 ? 'one' : 'put', $_ % 2 ? (1)
                                  : ("$v-after$_", 'v')) } 1 .. 6;
    is(scalar(grep { $_ && !$_->{error} } @more), 6, 'and so do the next ones')
        or diag(explain(\@more));
    $c->close;
}

sub busy_case {
    my $v = shift;
    my $sleep = 2;
    my $bound = 1;            # WebSocketDBDTimeout of /dbd
    my @clients = map { DbdTest::open_ws($v) } 1 .. 20;
    my %pids = map { ($_->serving_pid => 1) } @clients;
    # an echo socket in a child that serves some of the clients: keep
    # opening them (all kept open, so the MPM cannot hand every new one to
    # a single other child) until one shares a child with a client
    my($echo, @spare);
    for (1 .. 40) {
        my $e = DbdTest::open_ws($v, '/echo');
        if ($pids{ $e->serving_pid }) { $echo = $e; last }
        push @spare, $e;
    }
    $_->close for @spare;
    ok($echo, 'an echo socket in the same child as some clients')
        or return ok(0, 'so the 20 clients did not run');

    my $t0 = time;
    for my $i (0 .. $#clients) {
        $clients[$i]->send_text(qq({"id":$i,"query":"slow","params":[$sleep]}));
    }
    my(%answer, %at);
    my($max_echo, $n_echo) = (0, 0);
    my $until = $t0 + $sleep + 10;
    while (keys %answer < @clients && time < $until) {
        my $e0 = time;
        $echo->send_text("ping $n_echo");
        my $m = $echo->read_message(5);
        last unless $m && ($m->{payload} // '') eq "ping $n_echo";
        my $dt = (time - $e0) * 1000;
        $max_echo = $dt if $dt > $max_echo;
        $n_echo++;
        for my $i (0 .. $#clients) {
            next if $answer{$i};
            my $a = DbdTest::answer($clients[$i], 0.002) or next;
            $answer{$i} = $a;
            $at{$i} = time - $t0;
        }
        sleep 0.02;
    }
    my @busy = grep { ($answer{$_}{error} // '') eq 'busy' } keys %answer;
    my @rows = grep { $answer{$_}{rows} } keys %answer;
    my @late_busy = grep { $at{$_} > $bound + 1 } @busy;
    my @late_rows = grep { $at{$_} > $sleep + 2 } @rows;
    my @other = grep { !$answer{$_}{rows} && ($answer{$_}{error} // '') ne 'busy' }
                keys %answer;
    my $children = keys %pids;
    subtest "20 clients, DBDMax 2: rows or busy within the bound" => sub {
        is(scalar keys %answer, 20, 'every client got an answer');
        is(scalar @other, 0, 'each one rows or busy')
            or diag(explain([ map { $answer{$_} } @other ]));
        ok(@rows >= 2, scalar(@rows) . ' got their rows');
        ok(@rows <= 2 * $children,
           "at most DBDMax ($children children x 2) ran at once");
        ok(@busy >= 20 - 2 * $children, scalar(@busy) . ' answered busy');
        is(scalar @late_busy, 0, "busy within WebSocketDBDTimeout + 1 s")
            or diag(explain([ map { $at{$_} } @late_busy ]));
        is(scalar @late_rows, 0, "rows within the query's ${sleep} s + 2 s")
            or diag(explain([ map { $at{$_} } @late_rows ]));
        ok($n_echo >= 10, "the echo socket answered meanwhile ($n_echo round trips)");
        cmp_ok($max_echo, '<', 100,
               sprintf('slowest echo round trip %.1f ms (< 100 ms)', $max_echo));
        done_testing();
    };
    $_->close for @clients, $echo;
}

for my $v (@variants) {
    for my $case (@cases) {
        my($name, $code) = @$case;
        subtest "$v: $name" => sub {
            my $ok = eval { $code->($v); 1 };
            ok(0, 'no exception') or diag($@) unless $ok;
            done_testing();
        };
    }
    subtest "$v: the server stopped and started again" => sub {
        my $ok = eval { restart_case($v); 1 };
        ok(0, 'no exception') or diag($@) unless $ok;
        done_testing();
    };
    my $ok = eval { busy_case($v); 1 };
    ok(0, "$v: busy case: no exception") or diag($@) unless $ok;
}
