package WsChannel;
# Helpers for the channel tests (t/ws/channel*.t, t/ws/pubsub_hub.t) on top
# of WsTest: subscribers that read their hello, a keep-alive HTTP client for
# the publish endpoint, and a loop that reads many sockets at once.
#
#   my $s = WsChannel::subscriber('ws', '/fanout');   # hello read
#   $s->{id}, $s->{pid}, $s->{user}, $s->{channels}
#   my $r = WsChannel::post('ws', '/publish/chat', 'hi');  # {status, headers, json}
#   my $got = WsChannel::collect(\@subs, 2);  # {sub index => [messages]}

use strict;
use warnings;

use Carp qw(croak);
use JSON::PP ();
use MIME::Base64 qw(encode_base64);
use Time::HiRes qw(time sleep);

use WsTest;

use constant { TEXT => 1, BIN => 2, CLOSE => 8 };

our $JSON = JSON::PP->new->canonical;

# users of t/conf/htpasswd: the password is the name plus "-pw"
sub basic_auth {
    my($user, $pw) = @_;
    $pw = "$user-pw" unless defined $pw;
    return ('Authorization' => 'Basic ' . encode_base64("$user:$pw", ''));
}

sub json_or_undef {
    my $text = shift;
    return undef unless defined $text;
    my $v = eval { $JSON->decode($text) };
    return $v;
}

# percent-encode a channel name for a URL path segment
sub path_escape {
    my $s = shift;
    utf8::encode($s) if utf8::is_utf8($s);
    $s =~ s/([^A-Za-z0-9\-._~])/sprintf('%%%02X', ord $1)/ge;
    return $s;
}

# A WebSocket on a channel location.  With WebSocketChannelControl on the
# first message is the hello: {"event":"hello","id":"PID-N","user":...,
# "channels":[...]}; its id, pid, user and channels are kept in the object.
#   hello => 0   the location sends none (control off)
#   user  => NAME  Basic auth as NAME (password NAME-pw)
sub subscriber {
    my($v, $path, %o) = @_;
    my @h = @{ $o{headers} || [] };
    push @h, basic_auth($o{user}) if defined $o{user};
    my $c = WsTest->connect($v, $path, headers => \@h, timeout => $o{timeout} || 10);
    die "$v $path: handshake failed (" . ($c->status_line // 'no answer') . ")\n"
        unless $c->status == 101;
    return $c if defined $o{hello} && !$o{hello};
    my $m = $c->read_message(10);
    die "$v $path: no hello message\n" unless $m && !$m->{eof} && defined $m->{opcode};
    die "$v $path: first message is not text\n" unless $m->{opcode} == TEXT;
    my $hello = json_or_undef($m->{payload});
    die "$v $path: first message is not a hello: $m->{payload}\n"
        unless ref $hello eq 'HASH' && ($hello->{event} // '') eq 'hello';
    die "$v $path: hello without a valid id: $m->{payload}\n"
        unless defined $hello->{id} && $hello->{id} =~ /^(\d+)-(\d+)$/;
    $c->{hello} = $hello;
    $c->{hello_text} = $m->{payload};
    $c->{id} = $hello->{id};
    ($c->{pid}) = $hello->{id} =~ /^(\d+)-/;
    $c->{user} = $hello->{user};
    $c->{channels} = $hello->{channels};
    return $c;
}

# Subscribers until they are $n in all and span at least $min_pids child
# processes (the id names the child), opening at most $max_tries sockets;
# extra sockets from the child holding the most are closed.  Returns the
# list (dies when the spread cannot be reached).
sub spread_subscribers {
    my($v, $path, $n, $min_pids, $max_tries, %o) = @_;
    my @subs;
    my $tries = 0;
    my %pids;
    while ($tries < $max_tries) {
        if (@subs < $n) {
            push @subs, subscriber($v, $path, %o);
            $tries++;
        }
        %pids = ();
        $pids{ $_->{pid} }++ for @subs;
        last if @subs >= $n && keys(%pids) >= $min_pids;
        next if @subs < $n;
        # full but not spread: drop one from the fullest child
        my($big) = sort { $pids{$b} <=> $pids{$a} || $a <=> $b } keys %pids;
        my($i) = grep { $subs[$_]->{pid} == $big } reverse 0 .. $#subs;
        my($drop) = splice(@subs, $i, 1);
        $drop->send_close(1000);
        $drop->close;
        # a moment for the child's listener to move on
        sleep 0.01;
    }
    %pids = ();
    $pids{ $_->{pid} }++ for @subs;
    die sprintf("%s %s: %d subscribers span %d processes after %d sockets (need %d): %s\n",
                $v, $path, scalar @subs, scalar keys %pids, $tries, $min_pids,
                join(' ', map { "$_=$pids{$_}" } sort keys %pids))
        unless @subs >= $n && keys(%pids) >= $min_pids;
    return @subs;
}

# --------------------------------------------------------------------------
# reading many sockets

# Read frames from every connection until $timeout passes or $done->() is
# true (checked after each batch).  Each data frame is handed to
# $on_frame->($index, $frame); a close frame or EOF marks the connection
# ended ($c->{ended} = 'close CODE' / 'eof').  Returns the time it took.
# (One select over all sockets; a readable one is read once per round, so
# no socket waits for another.)
sub pump {
    my($conns, $timeout, $on_frame, $done) = @_;
    my $t0 = time;
    my $deadline = $t0 + $timeout;
    while (1) {
        my $rin = '';
        my($any, $pending) = (0, 0);
        for my $i (0 .. $#$conns) {
            my $c = $conns->[$i];
            next if $c->{ended};
            # every whole frame already read
            while (my $f = $c->_parse_frame) {
                if ($f->{opcode} == CLOSE) {
                    my $p = $f->{payload};
                    $c->{close_code} = length($p) >= 2 ? unpack('n', $p) : undef;
                    $c->{close_reason} = length($p) > 2 ? substr($p, 2) : '';
                    $c->{ended} = 'close ' . ($c->{close_code} // '-');
                    last;
                }
                if ($f->{opcode} == 9) {          # ping
                    $c->send_pong($f->{payload});
                    next;
                }
                next if $f->{opcode} == 10;       # pong
                $on_frame->($i, $f);
            }
            next if $c->{ended};
            if ($c->{eof}) {
                $c->{ended} = 'eof';
                next;
            }
            vec($rin, fileno($c->sock), 1) = 1;
            $any = 1;
            # bytes TLS has decrypted already: the socket may not show them
            $pending = 1 if $c->{tls} && $c->sock->pending;
        }
        return time - $t0 if $done && $done->();
        my $left = $deadline - time;
        return time - $t0 if $left <= 0 || !$any;
        my $n = select(my $rout = $rin, undef, undef, $pending ? 0 : $left > 0.2 ? 0.2 : $left);
        next if $n <= 0 && !$pending;
        for my $c (@$conns) {
            next if $c->{ended} || $c->{eof};
            my $fd = fileno($c->sock);
            next unless ($n > 0 && vec($rout, $fd, 1)) || ($c->{tls} && $c->sock->pending);
            # readable: this returns at once (a TLS record still incomplete
            # waits up to 50 ms for its rest)
            $c->_fill(time + 0.05);
        }
    }
}

# Every data message each connection receives within $timeout (or until
# each has $want, when given): [[frames of conn 0], [frames of conn 1], ...]
sub collect {
    my($conns, $timeout, $want) = @_;
    my @got = map { [] } @$conns;
    pump($conns, $timeout, sub { push @{ $got[$_[0]] }, $_[1] },
         defined $want ? sub { !grep { @$_ < $want } @got } : undef);
    return \@got;
}

# Until connection i has $want->[i] messages (at most $timeout), then
# $quiet seconds more for anything extra: [[frames of conn 0], ...]
sub collect_expect {
    my($conns, $want, $timeout, $quiet) = @_;
    my @got = map { [] } @$conns;
    my $on = sub { push @{ $got[$_[0]] }, $_[1] };
    pump($conns, $timeout, $on,
         sub { !grep { @{ $got[$_] } < $want->[$_] } 0 .. $#$conns });
    pump($conns, defined $quiet ? $quiet : 0.3, $on);
    return \@got;
}

# payloads, for is_deeply
sub payloads { return [map { $_->{payload} } @{ $_[0] }] }

# --------------------------------------------------------------------------
# HTTP: the publish endpoint

# One HTTP/1.1 connection kept alive over several requests (blocking I/O
# through WsTest's socket and parser); it reconnects when the server ends
# the connection and counts how often ($h->{connects}).
sub http_client {
    my($v) = @_;
    return bless { variant => $v, conn => undef, connects => 0 }, 'WsChannel::Http';
}

# One request on a fresh connection.  Returns {status, headers, body, json}.
sub post {
    my($v, $path, $body, %o) = @_;
    my $h = http_client($v);
    my $r = $h->request($o{method} || 'POST', $path, $body, %o);
    $h->close;
    return $r;
}

package WsChannel::Http;

use Carp qw(croak);
use Time::HiRes qw(time);

sub request {
    my($self, $method, $path, $body, %o) = @_;
    my @h = (Host => WsTest::host_header($self->{variant}), @{ $o{headers} || [] });
    push @h, WsChannel::basic_auth($o{user}, $o{password}) if defined $o{user};
    push @h, 'Content-Type' => $o{type} if defined $o{type};
    push @h, 'Connection' => 'close' if $o{close};
    my $req = "$method $path HTTP/1.1\r\n";
    for (my $i = 0; $i < @h; $i += 2) {
        $req .= "$h[$i]: $h[$i + 1]\r\n";
    }
    $req .= 'Content-Length: ' . length($body) . "\r\n" if defined $body;
    $req .= "\r\n";
    $req .= $body if defined $body;
    for my $attempt (1, 2) {
        if (!$self->{conn}) {
            $self->{conn} = WsTest->open_socket($self->{variant}, timeout => 10);
            $self->{connects}++;
            $self->{fresh} = 1;
        }
        my $c = $self->{conn};
        if (!$c->send_raw($req, 10)) {
            $self->close;
            next if $attempt == 1 && !$self->{fresh};
            croak "HTTP $method $path: write failed ($c->{write_error})";
        }
        my $r = $self->_read_response($c, $method);
        if (!$r) {
            $self->close;
            # a kept-alive connection the server closed meanwhile: once more
            next if $attempt == 1 && !$self->{fresh};
            croak "HTTP $method $path: no response";
        }
        $self->{fresh} = 0;
        $self->close if ($r->{headers}->{connection} // '') =~ /close/i;
        return $r;
    }
    croak "HTTP $method $path: no response";
}

# status line, headers, Content-Length or chunked body
sub _read_response {
    my($self, $c, $method) = @_;
    my $deadline = time + 15;
    my $end;
    while (($end = index($c->{rbuf}, "\r\n\r\n")) < 0) {
        return undef unless $c->_fill($deadline);
    }
    my $head = substr($c->{rbuf}, 0, $end + 4, '');
    my @lines = split /\r\n/, $head;
    my $sl = shift @lines;
    return undef unless $sl =~ m{^HTTP/\d\.\d (\d{3})};
    my %r = (status => $1, status_line => $sl, headers => {});
    for my $l (@lines) {
        next unless $l =~ /^([^:]+):\s*(.*)$/;
        my $k = lc $1;
        $r{headers}->{$k} = exists $r{headers}->{$k} ? "$r{headers}->{$k}, $2" : $2;
    }
    my $body = '';
    if ($method eq 'HEAD' || $r{status} == 204 || $r{status} == 304) {
        # no body
    }
    elsif (defined(my $len = $r{headers}->{'content-length'})) {
        while (length($c->{rbuf}) < $len) {
            return undef unless $c->_fill($deadline);
        }
        $body = substr($c->{rbuf}, 0, $len, '');
    }
    elsif (($r{headers}->{'transfer-encoding'} // '') =~ /chunked/i) {
        while (1) {
            my $e;
            while (($e = index($c->{rbuf}, "\r\n")) < 0) {
                return undef unless $c->_fill($deadline);
            }
            my $size = hex(substr($c->{rbuf}, 0, $e));
            substr($c->{rbuf}, 0, $e + 2, '');
            if ($size == 0) {
                while (($e = index($c->{rbuf}, "\r\n")) < 0) {
                    return undef unless $c->_fill($deadline);
                }
                substr($c->{rbuf}, 0, $e + 2, '');
                last;
            }
            while (length($c->{rbuf}) < $size + 2) {
                return undef unless $c->_fill($deadline);
            }
            $body .= substr($c->{rbuf}, 0, $size, '');
            substr($c->{rbuf}, 0, 2, '');
        }
    }
    else {
        1 while $c->_fill($deadline);
        $body = $c->{rbuf};
        $c->{rbuf} = '';
        $r{headers}->{connection} = 'close';
    }
    $r{body} = $body;
    $r{json} = ($r{headers}->{'content-type'} // '') =~ m{^application/json}i
        ? WsChannel::json_or_undef($body) : undef;
    return \%r;
}

sub connects { $_[0]->{connects} }

sub close {
    my $self = shift;
    if (my $c = delete $self->{conn}) {
        $c->close;
    }
}

1;
