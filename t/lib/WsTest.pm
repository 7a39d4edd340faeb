package WsTest;
# A small WebSocket (RFC 6455) client for the mod_ws test suite.
#
# Everything is built by hand on a raw socket so that tests can send what a
# well-behaved library never would: reserved bits and opcodes, unmasked
# frames, oversized control frames, frames written one byte at a time.
#
#   my $c = WsTest->connect('wss', '/echo', headers => [Origin => ...]);
#   $c->status == 101 or ...;
#   $c->send_text("hello");
#   my $f = $c->read_frame(5);          # {opcode, payload, fin, rsv, masked}
#   my ($code, $reason) = $c->expect_close(5);
#   $c->wait_eof(5);                    # true when the server closed TCP
#
# Variants: 'ws' talks to the main port, 'wss' to Apache::Test's
# <VirtualHost mod_ssl> with TLS (no certificate verification).

use strict;
use warnings;

use Carp qw(croak);
use Digest::SHA qw(sha1);
use Errno qw(EAGAIN EWOULDBLOCK EINTR EINPROGRESS);
use IO::Select ();
use IO::Socket::INET ();
use IO::Socket::SSL ();
use MIME::Base64 qw(encode_base64 decode_base64);
use Socket qw(IPPROTO_TCP TCP_NODELAY);
use Time::HiRes qw(time sleep);

use Apache::Test ();

use Exporter 'import';

# A server may close (even reset) a connection while we still write to it,
# e.g. IO::Socket::SSL's close_notify when a socket object goes away after
# the server dropped it: that must be an error to check, not a signal that
# kills the test script.
$SIG{PIPE} = 'IGNORE';
our @EXPORT_OK = qw(variants server_pid child_pids rss_kb random_bytes
                    ws_accept http_request close_payload);

use constant {
    OP_CONT  => 0x0,
    OP_TEXT  => 0x1,
    OP_BIN   => 0x2,
    OP_CLOSE => 0x8,
    OP_PING  => 0x9,
    OP_PONG  => 0xA,
};

our $GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
our $DEFAULT_TIMEOUT = 10;
our %method_is_head = (HEAD => 1);

# --------------------------------------------------------------------------
# server facts

sub variants { return ('ws', 'wss') }

# Run every [name, code] case on ws and on wss, each as a subtest; a case
# that dies fails its subtest with the exception (the file plans
# 2 x cases tests).
sub run_cases {
    my @cases = @_;
    require Test::More;
    for my $v (variants()) {
        for my $case (@cases) {
            my($name, $code) = @$case;
            Test::More::subtest("$v: $name" => sub {
                my $ok = eval { $code->($v); 1 };
                Test::More::ok(0, 'no exception') or Test::More::diag($@) unless $ok;
                Test::More::done_testing();
            });
        }
    }
}

# Apache::Test's plan() sends Test::More's failure diagnostics to STDOUT,
# where a non-verbose harness run hides them; call this after plan().
sub diag_to_stderr {
    require Test::Builder;
    Test::Builder->new->failure_output(\*STDERR);
}

# basic_config: the saved configuration, without re-probing httpd (which
# on Debian prints configuration errors about apache2.conf to stderr)
sub config { Apache::Test::basic_config() }

sub servername { config()->{vars}->{servername} || 'localhost' }

sub port {
    my $variant = shift || 'ws';
    my $cfg = config();
    if ($variant eq 'wss') {
        my $vh = $cfg->{vhosts}->{ $cfg->{vars}->{ssl_module_name} || 'mod_ssl' };
        croak "no SSL vhost configured (mod_ssl not loaded?)" unless $vh && $vh->{port};
        return $vh->{port};
    }
    return $cfg->{vars}->{port};
}

sub is_tls { return $_[0] eq 'wss' }

sub http_scheme { return is_tls($_[0]) ? 'https' : 'http' }

# "localhost:8529": what a browser would send in Host
sub host_header {
    my $variant = shift;
    return servername() . ':' . port($variant);
}

sub origin_of {
    my $variant = shift;
    return http_scheme($variant) . '://' . host_header($variant);
}

sub t_logs { config()->{vars}->{t_logs} }

sub server_pid {
    my $file = config()->{vars}->{t_pid_file} || (t_logs() . '/httpd.pid');
    open(my $fh, '<', $file) or return 0;
    my $pid = <$fh>;
    close $fh;
    return 0 unless defined $pid;
    chomp $pid;
    return $pid =~ /^(\d+)$/ ? $1 : 0;
}

# pid of mod_ws's hub process (a child of the parent httpd, but no worker)
# from DefaultRuntimeDir (t/logs here), or 0
sub hub_pid {
    open(my $fh, '<', t_logs() . '/mod_ws_hub.pid') or return 0;
    my $pid = <$fh>;
    close $fh;
    return 0 unless defined $pid;
    chomp $pid;
    return $pid =~ /^(\d+)$/ ? $1 : 0;
}

# pids of the processes whose parent is $ppid: httpd's children, less
# mod_ws's hub process
sub child_pids {
    my $ppid = shift or return ();
    my $hub = hub_pid();
    my @kids;
    opendir(my $dh, '/proc') or return ();
    for my $pid (grep { /^\d+$/ } readdir $dh) {
        open(my $fh, '<', "/proc/$pid/stat") or next;
        my $stat = <$fh>;
        close $fh;
        next unless defined $stat;
        # pid (comm) state ppid ...; comm may contain spaces and parens
        next unless $stat =~ /\)\s+(\S)\s+(\d+)/;
        next if $1 eq 'Z';
        push @kids, $pid if $2 == $ppid && $pid != $hub;
    }
    closedir $dh;
    return sort { $a <=> $b } @kids;
}

# The pid of the httpd process holding the server side of this connection
# (found through /proc/net/tcp and the processes' socket descriptors).
sub serving_pid {
    my $self = shift;
    my $lport = $self->{sock}->sockport or return 0;
    my $sport = port($self->{variant});
    my $want = sprintf(':%04X', $sport);
    my $peer = sprintf(':%04X', $lport);
    my $inode;
    for my $file ('/proc/net/tcp', '/proc/net/tcp6') {
        open(my $fh, '<', $file) or next;
        while (my $l = <$fh>) {
            my @f = split ' ', $l;
            next unless @f > 9;
            # server side: local = server port, remote = our port
            if ($f[1] =~ /\Q$want\E$/ && $f[2] =~ /\Q$peer\E$/) {
                $inode = $f[9];
                last;
            }
        }
        close $fh;
        last if $inode;
    }
    return 0 unless $inode;
    my $ppid = server_pid();
    for my $pid (child_pids($ppid), $ppid) {
        opendir(my $dh, "/proc/$pid/fd") or next;
        for my $fd (readdir $dh) {
            my $t = readlink("/proc/$pid/fd/$fd");
            next unless defined $t;
            if ($t eq "socket:[$inode]") {
                closedir $dh;
                return $pid;
            }
        }
        closedir $dh;
    }
    return 0;
}

# Command that starts the test server the way Apache::Test does.
sub start_cmd {
    my $v = config()->{vars};
    return join ' ', $v->{httpd}, '-d', $v->{serverroot}, '-f', $v->{t_conf_file},
        '-D', 'APACHE2', '-D', 'APACHE2_4';
}

# Start the test server (after a test stopped it) and wait until it answers.
sub start_server {
    my $timeout = shift || 30;
    my $cmd = start_cmd();
    system("$cmd >/dev/null 2>&1") == 0 or return 0;
    my $deadline = time + $timeout;
    while (time < $deadline) {
        my $pid = server_pid();
        if ($pid && pid_alive($pid)) {
            my $ok = eval {
                my $r = http_request('ws', 'GET', '/plain', timeout => 2);
                $r->status == 200;
            };
            return $pid if $ok;
        }
        sleep 0.2;
    }
    return 0;
}

# Wait until the processes are gone; returns the ones still alive.
sub wait_pids_gone {
    my($timeout, @pids) = @_;
    my $deadline = time + $timeout;
    while (1) {
        my @alive = grep { pid_alive($_) } @pids;
        return @alive if !@alive || time >= $deadline;
        sleep 0.1;
    }
}

sub rss_kb {
    my $pid = shift;
    open(my $fh, '<', "/proc/$pid/status") or return undef;
    while (my $l = <$fh>) {
        return $1 if $l =~ /^VmRSS:\s+(\d+)\s+kB/;
    }
    return undef;
}

sub pid_alive {
    my $pid = shift;
    return 0 unless $pid;
    open(my $fh, '<', "/proc/$pid/stat") or return 0;
    my $stat = <$fh>;
    close $fh;
    return 0 unless defined $stat && $stat =~ /\)\s+(\S)/;
    return $1 ne 'Z';
}

# --------------------------------------------------------------------------
# helpers

sub random_bytes {
    my $n = shift;
    my $s = '';
    if (open(my $fh, '<:raw', '/dev/urandom')) {
        read($fh, $s, $n);
        close $fh;
    }
    $s .= chr(int(rand(256))) while length($s) < $n;
    return $s;
}

sub ws_accept {
    my $key = shift;
    return encode_base64(sha1($key . $GUID), '');
}

sub close_payload {
    my($code, $reason) = @_;
    return '' unless defined $code;
    $reason = '' unless defined $reason;
    utf8::encode($reason) if utf8::is_utf8($reason);
    return pack('n', $code) . $reason;
}

sub mask_payload {
    my($mask, $data) = @_;
    my $len = length $data;
    return $data unless $len;
    my $m = $mask x (int($len / 4) + 1);
    return $data ^ substr($m, 0, $len);
}

# Build one frame.  %a: opcode, payload, fin (1), rsv (0..7), masked (1),
# mask (4 bytes; random by default), length (announced length, default the
# real one), len_bits (7/16/64: force an encoding).
sub build_frame {
    my %a = @_;
    my $payload = defined $a{payload} ? $a{payload} : '';
    croak "payload must be bytes" if utf8::is_utf8($payload) && !utf8::downgrade($payload, 1);
    my $fin    = exists $a{fin} ? $a{fin} : 1;
    my $rsv    = $a{rsv} || 0;
    my $masked = exists $a{masked} ? $a{masked} : 1;
    my $op     = defined $a{opcode} ? $a{opcode} : OP_TEXT;
    my $len    = defined $a{length} ? $a{length} : length $payload;

    my $b0 = ($fin ? 0x80 : 0) | (($rsv & 7) << 4) | ($op & 0x0F);
    my $mbit = $masked ? 0x80 : 0;
    my $bits = $a{len_bits} || ($len < 126 ? 7 : $len < 65536 ? 16 : 64);
    my $hdr;
    if ($bits == 7) {
        $hdr = pack('CC', $b0, $mbit | $len);
    }
    elsif ($bits == 16) {
        $hdr = pack('CCn', $b0, $mbit | 126, $len);
    }
    else {
        $hdr = pack('CCNN', $b0, $mbit | 127, int($len / 4294967296), $len % 4294967296);
    }
    if ($masked) {
        my $mask = defined $a{mask} ? $a{mask} : pack('N', int(rand(4294967296)));
        return $hdr . $mask . mask_payload($mask, $payload);
    }
    return $hdr . $payload;
}

# --------------------------------------------------------------------------
# connection

# Open a TCP (and TLS for wss) connection, no HTTP yet.
sub open_socket {
    my($class, $variant, %o) = @_;
    $variant ||= 'ws';
    my $timeout = $o{timeout} || $DEFAULT_TIMEOUT;
    # port: another server's (a private httpd a test started)
    my $port = $o{port} || port($variant);
    my $sock = IO::Socket::INET->new(
        PeerAddr => '127.0.0.1',
        PeerPort => $port,
        Proto    => 'tcp',
        Timeout  => $timeout,
    ) or croak "connect to 127.0.0.1:$port failed: $!";
    setsockopt($sock, IPPROTO_TCP, TCP_NODELAY, 1);
    my $tls = 0;
    if (is_tls($variant)) {
        IO::Socket::SSL->start_SSL($sock,
            SSL_verify_mode => IO::Socket::SSL::SSL_VERIFY_NONE(),
            SSL_hostname    => servername(),
            Timeout         => $timeout,
        ) or croak "TLS handshake failed: " . IO::Socket::SSL::errstr();
        $tls = 1;
    }
    binmode $sock;
    $sock->blocking(0);
    my $self = bless {
        sock    => $sock,
        tls     => $tls,
        variant => $variant,
        rbuf    => '',
        eof     => 0,
        reset   => 0,
        frag    => undef,
    }, $class;
    return $self;
}

# Open a connection and perform the opening handshake.
#   path     (default /echo)
#   headers  [name => value, ...]  extra/overriding headers; value undef
#            removes a default header (Upgrade, Connection,
#            Sec-WebSocket-Key, Sec-WebSocket-Version, Host)
#   add_headers [name => value, ...] appended (repeated headers)
#   key      Sec-WebSocket-Key (default: random 16 bytes, base64)
#   method   (GET), protocol (HTTP/1.1)
#   request  a complete raw request to send instead
#   body     request body (Content-Length added)
# Returns the object; ->status, ->header(name), ->body, ->accept_ok.
sub connect {
    my($class, $variant, $path, %o) = @_;
    my $self = $class->open_socket($variant, %o);
    $self->handshake($path, %o);
    return $self;
}

sub build_request {
    my($self, $path, %o) = @_;
    $path = '/echo' unless defined $path;
    my $key = exists $o{key} ? $o{key} : encode_base64(random_bytes(16), '');
    $self->{key} = $key;
    my @h = (
        Host                    => host_header($self->{variant}),
        Upgrade                 => 'websocket',
        Connection              => 'Upgrade',
        'Sec-WebSocket-Key'     => $key,
        'Sec-WebSocket-Version' => '13',
    );
    # headers: replace a default header of that name (any case; the name
    # is taken as given), undef removes it; add_headers: appended as is
    my @extra = @{ $o{headers} || [] };
    while (@extra) {
        my($n, $v) = splice(@extra, 0, 2);
        my $replaced = 0;
        for (my $i = 0; $i < @h; $i += 2) {
            next unless defined $h[$i] && lc $h[$i] eq lc $n;
            if ($replaced++) { $h[$i] = undef; next }
            @h[$i, $i + 1] = ($n, $v);
        }
        push @h, $n, $v unless $replaced;
    }
    push @h, @{ $o{add_headers} || [] };
    # the key actually sent (a test may have replaced or removed it)
    $self->{key} = undef;
    for (my $i = 0; $i < @h; $i += 2) {
        $self->{key} = $h[$i + 1]
            if defined $h[$i] && lc $h[$i] eq 'sec-websocket-key' && defined $h[$i + 1];
    }
    my $method = $o{method} || 'GET';
    my $proto  = $o{protocol} || 'HTTP/1.1';
    my $req = "$method $path $proto\r\n";
    for (my $i = 0; $i < @h; $i += 2) {
        next unless defined $h[$i] && defined $h[$i + 1];
        $req .= "$h[$i]: $h[$i + 1]\r\n";
    }
    if (defined $o{body}) {
        $req .= "Content-Length: " . length($o{body}) . "\r\n";
    }
    $req .= "\r\n";
    $req .= $o{body} if defined $o{body};
    return $req;
}

sub handshake {
    my($self, $path, %o) = @_;
    my $req = defined $o{request} ? $o{request} : $self->build_request($path, %o);
    $self->{request} = $req;
    my $timeout = $o{timeout} || $DEFAULT_TIMEOUT;
    $self->send_raw($req, $timeout);
    my $deadline = time + $timeout;
    my $end;
    while (($end = index($self->{rbuf}, "\r\n\r\n")) < 0) {
        my $r = $self->_fill($deadline);
        last unless $r;
    }
    if ($end < 0) {
        $self->{status} = 0;
        $self->{status_line} = '';
        $self->{headers} = {};
        $self->{body} = $self->{rbuf};
        return $self;
    }
    my $head = substr($self->{rbuf}, 0, $end + 4, '');
    my @lines = split /\r\n/, $head;
    my $sl = shift @lines;
    $self->{status_line} = $sl;
    $self->{status} = $sl =~ m{^HTTP/\d\.\d\s+(\d{3})} ? $1 : 0;
    my %h;
    for my $l (@lines) {
        next unless $l =~ /^([^:\s]+)\s*:\s*(.*?)\s*$/;
        push @{ $h{lc $1} }, $2;
    }
    $self->{headers} = \%h;
    $self->{head} = $head;
    if ($self->{status} != 101) {
        $self->_read_body($deadline, $method_is_head{uc($o{method} || 'GET')});
    }
    return $self;
}

sub _read_body {
    my($self, $deadline, $head_only) = @_;
    my $h = $self->{headers};
    $self->{body} = '';
    return if $head_only || $self->{status} == 204 || $self->{status} == 304
        || $self->{status} < 200;
    if (my $cl = $self->header('Content-Length')) {
        while (length($self->{rbuf}) < $cl) {
            last unless $self->_fill($deadline);
        }
        $self->{body} = substr($self->{rbuf}, 0, $cl, '');
    }
    elsif (($self->header('Transfer-Encoding') || '') =~ /chunked/i) {
        my $body = '';
        while (1) {
            my $i;
            while (($i = index($self->{rbuf}, "\r\n")) < 0) {
                return unless $self->_fill($deadline);
            }
            my $line = substr($self->{rbuf}, 0, $i + 2, '');
            my($size) = $line =~ /^([0-9a-fA-F]+)/;
            last unless defined $size;
            $size = hex $size;
            if ($size == 0) {
                # trailers until empty line
                while (index($self->{rbuf}, "\r\n") < 0) {
                    last unless $self->_fill($deadline);
                }
                last;
            }
            while (length($self->{rbuf}) < $size + 2) {
                return unless $self->_fill($deadline);
            }
            $body .= substr($self->{rbuf}, 0, $size, '');
            substr($self->{rbuf}, 0, 2, '');
        }
        $self->{body} = $body;
    }
    else {
        # until the server closes
        1 while $self->_fill($deadline);
        $self->{body} = $self->{rbuf};
        $self->{rbuf} = '';
    }
}

sub status      { $_[0]->{status} }
sub status_line { $_[0]->{status_line} }
sub body        { $_[0]->{body} }
sub key         { $_[0]->{key} }
sub variant     { $_[0]->{variant} }
sub sock        { $_[0]->{sock} }

# first value of a response header (all values in list context)
sub header {
    my($self, $name) = @_;
    my $v = $self->{headers}->{ lc $name } || [];
    return wantarray ? @$v : $v->[0];
}

sub header_count {
    my($self, $name) = @_;
    return scalar @{ $self->{headers}->{ lc $name } || [] };
}

# does a comma-separated header contain this token (case-insensitive)?
sub header_has_token {
    my($self, $name, $token) = @_;
    for my $v ($self->header($name)) {
        for my $t (split /\s*,\s*/, $v) {
            return 1 if lc $t eq lc $token;
        }
    }
    return 0;
}

sub accept_ok {
    my $self = shift;
    my $got = $self->header('Sec-WebSocket-Accept');
    return defined $got && defined $self->{key} && $got eq ws_accept($self->{key});
}

# --------------------------------------------------------------------------
# low-level I/O

# Read what is available into rbuf, waiting until $deadline.
# Returns the number of bytes read, 0 on EOF/reset, undef on timeout.
sub _fill {
    my($self, $deadline) = @_;
    return 0 if $self->{eof};
    my $sock = $self->{sock};
    while (1) {
        my $n;
        if (!$self->{tls} || !$sock->pending) {
            my $left = $deadline - time;
            return undef if $left < 0;
            my $rin = '';
            vec($rin, fileno($sock), 1) = 1;
            my $nfound = select(my $rout = $rin, undef, undef, $left);
            if ($nfound < 0) {
                next if $! == EINTR;
                $self->{eof} = 1;
                return 0;
            }
            return undef if $nfound == 0;
        }
        $n = sysread($sock, my $chunk, 262144);
        if (defined $n) {
            if ($n == 0) {
                $self->{eof} = 1;
                return 0;
            }
            $self->{rbuf} .= $chunk;
            return $n;
        }
        next if $! == EINTR || $! == EAGAIN || $! == EWOULDBLOCK
            || ($self->{tls} && $IO::Socket::SSL::SSL_ERROR
                && ($IO::Socket::SSL::SSL_ERROR == IO::Socket::SSL::SSL_WANT_READ()
                    || $IO::Socket::SSL::SSL_ERROR == IO::Socket::SSL::SSL_WANT_WRITE()));
        # ECONNRESET, TLS errors: the connection is gone
        $self->{eof} = 1;
        $self->{reset} = 1;
        $self->{read_error} = "$!";
        return 0;
    }
}

# Read whatever is immediately available (no waiting).
sub _drain_nowait {
    my $self = shift;
    my $got = 0;
    while (1) {
        my $r = $self->_fill(time);
        last unless $r;
        $got += $r;
    }
    return $got;
}

# Write all bytes; while the socket is not writable, keep reading so that a
# server echoing back cannot dead-lock us.  Returns true when everything
# was written, false when the connection broke or $timeout passed.
sub send_raw {
    my($self, $data, $timeout) = @_;
    $timeout ||= 30;
    my $deadline = time + $timeout;
    my $sock = $self->{sock};
    my $off = 0;
    my $len = length $data;
    local $SIG{PIPE} = 'IGNORE';
    while ($off < $len) {
        my $n = syswrite($sock, $data, $len - $off > 65536 ? 65536 : $len - $off, $off);
        if (defined $n && $n > 0) {
            $off += $n;
            next;
        }
        my $want_read = 0;
        if (!defined $n) {
            if ($self->{tls} && $IO::Socket::SSL::SSL_ERROR
                && $IO::Socket::SSL::SSL_ERROR == IO::Socket::SSL::SSL_WANT_READ()) {
                $want_read = 1;
            }
            elsif (!($! == EAGAIN || $! == EWOULDBLOCK || $! == EINTR
                     || ($self->{tls} && $IO::Socket::SSL::SSL_ERROR
                         && $IO::Socket::SSL::SSL_ERROR == IO::Socket::SSL::SSL_WANT_WRITE()))) {
                $self->{write_error} = "$!";
                return 0;
            }
        }
        my $left = $deadline - time;
        if ($left <= 0) {
            $self->{write_error} = 'timeout';
            return 0;
        }
        my $rin = '';
        vec($rin, fileno($sock), 1) = 1;
        my $win = $want_read ? undef : $rin;
        my $nf = select(my $rout = $rin, my $wout = $win, undef, $left > 0.5 ? 0.5 : $left);
        if ($nf > 0 && vec($rout, fileno($sock), 1)) {
            # keep the server's output moving
            my $r = $self->_fill(time + 0.001);
            if (defined $r && $r == 0 && $self->{eof}) {
                # peer closed: writing will fail; report it
                $self->{write_error} = 'peer closed';
                return 0 if !$want_read;
            }
        }
    }
    return 1;
}

# Send bytes in pieces of $chunk bytes with $delay seconds in between.
sub send_chunked {
    my($self, $data, $chunk, $delay) = @_;
    $chunk ||= 1;
    $delay = 0.001 unless defined $delay;
    for (my $i = 0; $i < length $data; $i += $chunk) {
        return 0 unless $self->send_raw(substr($data, $i, $chunk));
        sleep $delay if $delay;
    }
    return 1;
}

# send_frame(opcode => .., payload => .., fin, rsv, masked, mask, chunk, delay, ...)
sub send_frame {
    my($self, %a) = @_;
    my $frame = build_frame(%a);
    return $a{chunk}
        ? $self->send_chunked($frame, $a{chunk}, $a{delay})
        : $self->send_raw($frame);
}

sub bytes_of {
    my $s = shift;
    $s = '' unless defined $s;
    utf8::encode($s) if utf8::is_utf8($s);
    return $s;
}

sub send_text   { my($s, $p, %a) = @_; $s->send_frame(%a, opcode => OP_TEXT, payload => bytes_of($p)) }
sub send_binary { my($s, $p, %a) = @_; $s->send_frame(%a, opcode => OP_BIN,  payload => $p) }
sub send_ping   { my($s, $p, %a) = @_; $s->send_frame(%a, opcode => OP_PING, payload => defined $p ? $p : '') }
sub send_pong   { my($s, $p, %a) = @_; $s->send_frame(%a, opcode => OP_PONG, payload => defined $p ? $p : '') }

sub send_close {
    my($self, $code, $reason, %a) = @_;
    return $self->send_frame(%a, opcode => OP_CLOSE, payload => close_payload($code, $reason));
}

# Parse one frame from rbuf; undef when incomplete.
sub _parse_frame {
    my $self = shift;
    my $buf = \$self->{rbuf};
    my $have = length $$buf;
    return undef if $have < 2;
    my($b0, $b1) = unpack('CC', $$buf);
    my $len = $b1 & 0x7F;
    my $pos = 2;
    if ($len == 126) {
        return undef if $have < 4;
        $len = unpack('n', substr($$buf, 2, 2));
        $pos = 4;
    }
    elsif ($len == 127) {
        return undef if $have < 10;
        my($hi, $lo) = unpack('NN', substr($$buf, 2, 8));
        $len = $hi * 4294967296 + $lo;
        $pos = 10;
    }
    my $masked = $b1 & 0x80 ? 1 : 0;
    my $mask;
    if ($masked) {
        return undef if $have < $pos + 4;
        $mask = substr($$buf, $pos, 4);
        $pos += 4;
    }
    return undef if $have < $pos + $len;
    substr($$buf, 0, $pos, '');
    my $payload = substr($$buf, 0, $len, '');
    $payload = mask_payload($mask, $payload) if $masked;
    return {
        fin     => $b0 & 0x80 ? 1 : 0,
        rsv     => ($b0 >> 4) & 7,
        opcode  => $b0 & 0x0F,
        masked  => $masked,
        length  => $len,
        payload => $payload,
    };
}

# Next frame from the server.  Returns a hashref, {eof => 1} when the
# connection ended (with ->{reset} set on ECONNRESET), or undef on timeout.
sub read_frame {
    my($self, $timeout) = @_;
    $timeout = $DEFAULT_TIMEOUT unless defined $timeout;
    my $deadline = time + $timeout;
    while (1) {
        my $f = $self->_parse_frame;
        return $f if $f;
        my $r = $self->_fill($deadline);
        return undef unless defined $r;
        if ($r == 0) {
            return { eof => 1, reset => $self->{reset}, partial => length $self->{rbuf} };
        }
    }
}

# Next data message (text/binary, reassembled), close frame or eof.
#   pong => 1  answer pings (default), pings => \@seen collects ping payloads
# Returns {opcode, payload, frames} / close frame hash / {eof=>1} / undef.
sub read_message {
    my($self, $timeout, %o) = @_;
    $timeout = $DEFAULT_TIMEOUT unless defined $timeout;
    my $deadline = time + $timeout;
    my $answer = exists $o{pong} ? $o{pong} : 1;
    my($op, $data, $frames);
    while (1) {
        my $left = $deadline - time;
        $left = 0 if $left < 0;
        my $f = $self->read_frame($left);
        return undef unless $f;
        return $f if $f->{eof};
        my $fop = $f->{opcode};
        if ($fop == OP_PING) {
            push @{ $o{pings} }, $f->{payload} if $o{pings};
            $self->send_pong($f->{payload}) if $answer;
            next;
        }
        if ($fop == OP_PONG) {
            push @{ $o{pongs} }, $f->{payload} if $o{pongs};
            next;
        }
        return $f if $fop == OP_CLOSE;
        if (!defined $op) {
            $op = $fop;
            $data = $f->{payload};
        }
        else {
            $data .= $f->{payload};
        }
        $frames++;
        if ($f->{fin}) {
            return { opcode => $op, payload => $data, frames => $frames,
                     masked => $f->{masked}, rsv => $f->{rsv} };
        }
    }
}

# Read until a close frame (skipping data, answering nothing); returns
# (code, reason, frame) with code undef for an empty close payload; an empty
# list when the connection ended or timed out without a close frame.
sub expect_close {
    my($self, $timeout, %o) = @_;
    $timeout = $DEFAULT_TIMEOUT unless defined $timeout;
    my $deadline = time + $timeout;
    my @skipped;
    while (1) {
        my $left = $deadline - time;
        $left = 0 if $left < 0;
        my $f = $self->read_frame($left);
        $self->{skipped} = \@skipped;
        return () unless $f;
        return () if $f->{eof};
        if ($f->{opcode} == OP_CLOSE) {
            my $p = $f->{payload};
            my($code, $reason) = (undef, '');
            if (length($p) >= 2) {
                $code = unpack('n', $p);
                $reason = substr($p, 2);
            }
            $self->{close_frame} = $f;
            return ($code, $reason, $f);
        }
        push @skipped, $f;
    }
}

sub skipped_frames { @{ $_[0]->{skipped} || [] } }

# Wait until the server closes the TCP connection; data is discarded.
# True when EOF/reset was seen before $timeout.
sub wait_eof {
    my($self, $timeout) = @_;
    $timeout = $DEFAULT_TIMEOUT unless defined $timeout;
    my $deadline = time + $timeout;
    while (1) {
        $self->{rbuf} = '';
        my $r = $self->_fill($deadline);
        return 0 unless defined $r;
        return 1 if $r == 0;
    }
}

sub is_eof { $_[0]->{eof} }

# Is the connection still open (no EOF seen, nothing read within $t)?
sub still_open {
    my($self, $t) = @_;
    $t = 0.2 unless defined $t;
    return 0 if $self->{eof};
    my $before = length $self->{rbuf};
    my $r = $self->_fill(time + $t);
    return 0 if defined $r && $r == 0;
    return 1;
}

sub pending_bytes { length $_[0]->{rbuf} }

# Close the TCP connection from our side.
sub shutdown_write {
    my $self = shift;
    shutdown($self->{sock}, 1);
}

sub close {
    my $self = shift;
    if (my $s = delete $self->{sock}) {
        if ($self->{tls}) {
            $s->close(SSL_no_shutdown => 1);
        }
        else {
            CORE::close($s);
        }
    }
    $self->{eof} = 1;
}

sub DESTROY {
    my $self = shift;
    local($., $@, $!, $^E, $?);
    $self->close if $self->{sock};
}

# --------------------------------------------------------------------------
# plain HTTP, for the "declined" cases and smoke tests

# http_request($variant, $method, $path, headers => [...], body => ...)
# -> object with ->status, ->header, ->body (via the same parser)
sub http_request {
    my($variant, $method, $path, %o) = @_;
    my $c = __PACKAGE__->open_socket($variant, %o);
    my @h = (Host => host_header($variant), Connection => 'close', @{ $o{headers} || [] });
    my $req = "$method $path " . ($o{protocol} || 'HTTP/1.1') . "\r\n";
    for (my $i = 0; $i < @h; $i += 2) {
        $req .= "$h[$i]: $h[$i + 1]\r\n" if defined $h[$i + 1];
    }
    $req .= "Content-Length: " . length($o{body}) . "\r\n" if defined $o{body};
    $req .= "\r\n";
    $req .= $o{body} if defined $o{body};
    $c->handshake($path, request => $req, method => $method);
    return $c;
}

# --------------------------------------------------------------------------
# misc

# A string of $n bytes that is valid UTF-8 text (ASCII plus multibyte
# characters, never cut in the middle of a character).
sub utf8_text {
    my $n = shift;
    my $unit = "h\xC3\xA9llo w\xC3\xB6rld \xE2\x82\xAC \xF0\x9F\x98\x80 ";   # 30 bytes
    my $s = $unit x (int($n / length $unit) + 1);
    $s = substr($s, 0, $n);
    # trim an incomplete trailing character, pad with ASCII
    while (length $s) {
        my $copy = $s;
        last if utf8::decode($copy);
        chop $s;
    }
    $s .= 'x' x ($n - length $s);
    return $s;
}

sub binary_data {
    my $n = shift;
    my $r = random_bytes($n > 4096 ? 4096 : $n);
    return '' unless $n;
    my $s = $r x (int($n / length $r) + 1);
    return substr($s, 0, $n);
}

1;
