#!/usr/bin/perl
# The demo's forward backend: a plain CGI script, run by the demo httpd
# itself (mod_cgid) for every event that `WebSocketHandler forward` posts
# to it.  It knows nothing of WebSockets: it reads a POST and answers it.
#   open     -> a JSON greeting (sent to the new socket)
#   message  -> JSON: what it got, reversed, and this process's PID
#   close    -> 204 (nobody reads it)
use strict;
use warnings;
use JSON::PP ();

my $len = $ENV{CONTENT_LENGTH} || 0;
my $body = '';
read(STDIN, $body, $len) if $len;

my $event = $ENV{HTTP_WEBSOCKET_EVENT} || '';
my $id    = $ENV{HTTP_WEBSOCKET_CONNECTION_ID} || '';
my $json  = JSON::PP->new->utf8->canonical;

sub answer {
    my($status, $type, $data) = @_;
    print "Status: $status\r\n";
    print "Content-Type: $type\r\n" if defined $type;
    print "\r\n";
    print $data if defined $data;
    exit 0;
}

if ($ENV{REQUEST_METHOD} ne 'POST' || !$event) {
    answer('405 Method Not Allowed', 'text/plain', "POST WebSocket events here\n");
}
if ($event eq 'open') {
    answer('200 OK', 'application/json',
           $json->encode({ backend => 'forward.cgi', event => 'welcome', id => $id }));
}
if ($event ne 'message') {
    answer('204 No Content');
}

my $frame = $ENV{HTTP_WEBSOCKET_FRAME} || 'text';
my %out = (backend => 'forward.cgi', id => $id, frame => $frame, pid => $$);
if ($frame eq 'text') {
    my $text = $body;
    utf8::decode($text);
    $out{received} = $text;
    $out{reversed} = scalar reverse $text;
}
else {
    $out{bytes} = length $body;
}
answer('200 OK', 'application/json', $json->encode(\%out));
