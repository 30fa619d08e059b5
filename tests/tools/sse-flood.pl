#!/usr/bin/perl
# sse-flood.pl PORT -- a model endpoint gone wrong, for tests/integration/
# worker.sh: it answers every request with an event stream of `data:` lines
# that no blank line ever ends (issue 11), as fast as the client reads, until
# the client hangs up. The stand-in cannot send this: its events are always
# whole. Prints "request N" for each connection, so a test can count retries.
use strict;
use warnings;
use IO::Socket::INET;

$SIG{PIPE} = 'IGNORE';
$| = 1;
my $server = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => $ARGV[0],
                                   Listen => 16, ReuseAddr => 1)
    or die "sse-flood: cannot listen on $ARGV[0]: $!\n";
print "listening\n";
my $line = 'data: ' . ('x' x 1000) . "\n";
my $n = 0;
while (my $c = $server->accept) {
    print 'request ', ++$n, "\n";
    my $head = '';
    while ($head !~ /\r\n\r\n/) {
        last unless sysread($c, $head, 4096, length $head);
    }
    syswrite($c, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n");
    my $chunk = $line x 64;
    while (defined syswrite($c, $chunk)) { }
    close $c;
}
