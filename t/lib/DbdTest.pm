package DbdTest;
# The dbd handler's test cases, run by t/ws/dbd.t (SQLite) and
# t/ws/dbd_pg.t (PostgreSQL) against the same statements (the labels of
# t/conf/extra.conf.in, the tables of t/conf/dbd-schema.sql), and a private
# PostgreSQL server that dbd_pg.t starts and stops itself.

use strict;
use warnings;

use File::Path qw(make_path);
use File::Spec ();
use JSON::PP ();
use Test::More;
use Time::HiRes qw(time sleep);

use WsTest;

my $json = JSON::PP->new->utf8->canonical->allow_nonref;

sub open_ws {
    my($v, $path) = @_;
    my $c = WsTest->connect($v, $path || '/dbd');
    die "$v: handshake failed (" . ($c->status_line // '') . ")\n"
        unless $c->status == 101;
    return $c;
}

# Send a message (a hash: encoded as JSON; a string: sent as it is) and
# return the decoded answer (undef when none came or it is not JSON).
sub ask {
    my($c, $msg, $timeout) = @_;
    $c->send_text(ref $msg ? $json->encode($msg) : $msg);
    return answer($c, $timeout);
}

sub answer {
    my($c, $timeout) = @_;
    my $m = $c->read_message($timeout // 10);
    return undef unless $m && !$m->{eof} && ($m->{opcode} // 0) == 1;
    my $a = eval { $json->decode($m->{payload}) };
    diag("not JSON: $m->{payload}") unless $a;
    return $a;
}

sub run { my($c, $id, $label, @params) = @_;
        return ask($c, { id => $id, query => $label, params => [@params] }) }

# The socket still answers a good query after whatever came before.
sub still_usable {
    my($c, $what) = @_;
    my $a = DbdTest::run($c, 99, 'one', 2);
    is_deeply($a && $a->{rows}, [[ '2', 'second', 'two' ]],
              "the socket still answers after $what");
}

# [name, code($variant)] cases for WsTest::run_cases or a loop.
sub cases {
    return (
    [ 'select: 0, 1 and 1000 rows, columns named' => sub {
        my $c = open_ws(shift);
        my $a = DbdTest::run($c, 1, 'zero');
        is_deeply($a, { id => 1, columns => [qw(id name note)], rows => [] },
                  'no rows, the columns still named');
        $a = DbdTest::run($c, 2, 'one', 1);
        is_deeply($a, { id => 2, columns => [qw(id name note)],
                        rows => [[ '1', 'first', undef ]] },
                  'one row, SQL NULL as null');
        $a = DbdTest::run($c, 3, 'many');
        is_deeply($a->{columns}, ['n'], '1000 rows: the column');
        is(scalar @{ $a->{rows} || [] }, 1000, '1000 rows');
        is_deeply($a->{rows}, [ map { ["$_"] } 1 .. 1000 ],
                  'every row, in order');
        $c->close;
    } ],
    [ 'insert and update answer affected' => sub {
        my $v = shift;
        my $c = open_ws($v);
        for my $i (1 .. 3) {
            is_deeply(DbdTest::run($c, "p$i", 'put', "$v-u$i", "old$i"),
                      { id => "p$i", affected => 1 }, "insert $i: affected 1");
        }
        is_deeply(DbdTest::run($c, 'r', 'rename', 'new', "$v-u%"),
                  { id => 'r', affected => 3 }, 'update: affected 3');
        is_deeply(DbdTest::run($c, 'g', 'get', "$v-u2")->{rows},
                  [[ "$v-u2", 'new' ]], 'the update is there');
        is_deeply(DbdTest::run($c, 'r0', 'rename', 'x', "$v-none%"),
                  { id => 'r0', affected => 0 }, 'update of nothing: 0');
        $c->close;
    } ],
    [ 'NULL, UTF-8, quotes and injection stay data' => sub {
        my $v = shift;
        my $c = open_ws($v);
        is_deeply(DbdTest::run($c, 1, 'nulls'),
                  { id => 1, columns => [qw(missing present)],
                    rows => [[ undef, 'x' ]] }, 'NULL in a select');
        DbdTest::run($c, 2, 'put', "$v-null", undef);
        is_deeply(DbdTest::run($c, 3, 'get', "$v-null")->{rows},
                  [[ "$v-null", undef ]], 'a null parameter is SQL NULL');
        my $text = "h\x{e9}llo w\x{f6}rld \x{2713} \x{65e5}\x{672c}\x{8a9e} \x{1f389}";
        DbdTest::run($c, 4, 'put', "$v-utf8", $text);
        is_deeply(DbdTest::run($c, 5, 'get', "$v-utf8")->{rows},
                  [[ "$v-utf8", $text ]], 'UTF-8 text comes back as sent');
        my $evil = q{O'Brien "quoted" \\ '; DROP TABLE kv; --};
        my $key = "$v-'; DROP TABLE kv; --";
        is_deeply(DbdTest::run($c, 6, 'put', $key, $evil),
                  { id => 6, affected => 1 }, 'quotes and SQL as parameters');
        is_deeply(DbdTest::run($c, 7, 'get', $key)->{rows}, [[ $key, $evil ]],
                  'they come back as data');
        my $n = DbdTest::run($c, 8, 'count');
        ok($n && $n->{rows} && $n->{rows}[0][0] >= 4,
           'the table is still there');
        $c->close;
    } ],
    [ 'errors answer JSON and keep the socket' => sub {
        my $c = open_ws(shift);
        my $a = ask($c, '{"id":1,"query":');
        like($a && $a->{error}, qr/invalid JSON/, 'invalid JSON');
        still_usable($c, 'invalid JSON');
        $c->send_binary('{"id":2,"query":"one","params":[1]}');
        $a = answer($c);
        like($a && $a->{error}, qr/binary/, 'a binary message');
        ok(!exists $a->{id}, 'no id for a message never read');
        still_usable($c, 'a binary message');
        $a = ask($c, '[1,2]');
        like($a && $a->{error}, qr/object/, 'JSON that is not an object');
        $a = DbdTest::run($c, 'u', 'nope');
        is($a->{id}, 'u', 'the id comes back with an error');
        like($a->{error}, qr/not allowed/, 'an unknown label');
        $a = DbdTest::run($c, 's', 'secret');
        like($a->{error}, qr/not allowed/, 'a prepared label not listed here');
        still_usable($c, 'unknown labels');
        $a = DbdTest::run($c, 'w0', 'get');
        like($a->{error}, qr/takes 1 parameter, got 0/, 'too few parameters');
        $a = DbdTest::run($c, 'w2', 'get', 'a', 'b');
        like($a->{error}, qr/takes 1 parameter, got 2/, 'too many parameters');
        $a = ask($c, { id => 'o', query => 'get', params => [ { a => 1 } ] });
        like($a->{error}, qr/parameters are/, 'an object as a parameter');
        still_usable($c, 'wrong parameters');
        $a = DbdTest::run($c, 'd', 'dup', 'y');
        ok($a && defined $a->{error} && $a->{error} ne '',
           'an SQL error (duplicate key): ' . ($a && $a->{error} // 'none'));
        is($a && $a->{id}, 'd', 'with its id');
        still_usable($c, 'an SQL error');
        $c->send_close(1000);
        my($code) = $c->expect_close(10);
        is($code, 1000, 'the socket closes normally at the end');
    } ],
    [ 'answers keep the order of the messages' => sub {
        my $c = open_ws(shift);
        my @ids = (1 .. 6);
        $c->send_text($json->encode({ id => $_, query => $_ % 2 ? 'many' : 'one',
                                      params => $_ % 2 ? [] : [1] })) for @ids;
        $c->send_text('not json');
        my @got = map { my $a = answer($c); $a ? ($a->{id} // 'none') : 'lost' }
                  @ids, 'x';
        is_deeply(\@got, [ @ids, 'none' ], 'in order, the error last');
        $c->close;
    } ],
    );
}

# --------------------------------------------------------------------------
# A private PostgreSQL server under t/pg: a cluster made with initdb,
# listening only on a Unix socket in t/pg (no TCP port), stopped by PID.

sub pg_bindir {
    my @dirs = sort { ($b =~ /(\d+)/)[0] <=> ($a =~ /(\d+)/)[0] }
               glob('/usr/lib/postgresql/*/bin');
    for my $d (@dirs) {
        return $d if -x "$d/initdb" && -x "$d/pg_ctl";
    }
    die "PostgreSQL's server is not installed (apt-get install postgresql)\n";
}

sub pg_root { File::Spec->catdir(WsTest::config()->{vars}->{serverroot}, 'pg') }

sub pg_pid {
    my $f = File::Spec->catfile(pg_root(), 'data', 'postmaster.pid');
    open(my $fh, '<', $f) or return 0;
    my $pid = <$fh>;
    close $fh;
    return 0 unless defined $pid && $pid =~ /^(\d+)/;
    return WsTest::pid_alive($1) ? $1 : 0;
}

sub run_quiet {
    my(@cmd) = @_;
    my $log = File::Spec->catfile(pg_root(), 'commands.log');
    open(my $save, '>&', \*STDOUT) or die;
    open(my $save_err, '>&', \*STDERR) or die;
    open(STDOUT, '>>', $log) or die "cannot write $log: $!";
    open(STDERR, '>&', \*STDOUT) or die;
    my $rc = system(@cmd);
    open(STDOUT, '>&', $save) or die;
    open(STDERR, '>&', $save_err) or die;
    return $rc == 0;
}

# Make the cluster (first time), start it, make the database and tables.
sub pg_setup {
    my $root = pg_root();
    my $bin = pg_bindir();
    my $data = File::Spec->catdir($root, 'data');
    make_path($root);
    unless (-f "$data/PG_VERSION") {
        run_quiet("$bin/initdb", '-D', $data, '-A', 'trust', '-E', 'UTF8',
                  '--locale=C', '--no-sync')
            or die "initdb failed (see $root/commands.log)\n";
    }
    pg_start() or die "PostgreSQL did not start (see $root/server.log)\n";
    my $schema = File::Spec->catfile(WsTest::config()->{vars}->{t_conf},
                                     'dbd-schema.sql');
    run_quiet("$bin/createdb", '-h', $root, 'modws')
        or die "createdb failed\n";
    run_quiet("$bin/psql", '-h', $root, '-d', 'modws', '-q',
              '-v', 'ON_ERROR_STOP=1', '-f', $schema)
        or die "psql could not make the tables\n";
    return 1;
}

sub pg_start {
    my $root = pg_root();
    my $bin = pg_bindir();
    return 1 if pg_pid();
    run_quiet("$bin/pg_ctl", '-D', "$root/data", '-l', "$root/server.log",
              '-w', '-t', '30', '-o',
              "-k $root -c listen_addresses= -c fsync=off -c max_connections=60",
              'start')
        or return 0;
    return pg_pid() ? 1 : 0;
}

# Fast shutdown (SIGINT: sessions are ended), waiting at most 30 s.
sub pg_stop {
    my $pid = pg_pid() or return 1;
    kill 'INT', $pid;
    my @left = WsTest::wait_pids_gone(30, $pid);
    return !@left;
}

1;
