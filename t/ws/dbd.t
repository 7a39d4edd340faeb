# The dbd handler on SQLite (the main server's DBDriver, t/conf/extra.conf.in;
# TEST.PL makes the database): selects of 0, 1 and 1000 rows with their
# columns named, inserts and updates with "affected", NULL, UTF-8, quotes
# and SQL in parameters kept as data, every error as JSON on a socket that
# stays usable, answers in the order of the messages.  ws and wss.
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib "$FindBin::Bin/../lib";

use Apache::Test qw(-withtestmore);
use Test::More import => ["!plan"];
use DbdTest;
use WsTest;

my @cases = DbdTest::cases();
plan tests => 2 * @cases;
WsTest::diag_to_stderr();

WsTest::run_cases(@cases);
