#!/bin/sh
# xe diagnostic-license-status: XAPI's table (columns padded to the
# widest cell) of each host's licence: hostname, the uuid's first 8
# characters, the features as XAPI's compact tags (blanks where a
# feature is off), edition, expiry (RFC 3339) and days left, nearest
# expiry first, then the pool's restrictions. Days left depend on the
# date, so this is a script, not a golden transcript.
XE=${XE:-$PWD/cmd/xe/xe}
[ -x "$XE" ] || exit 77
tmp=$(mktemp -d "${TMPDIR:-/tmp}/xe-license.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT
XCP_STATE_DIR=$tmp/state XCP_HV=sim HOME=$tmp
export XCP_STATE_DIR XCP_HV HOME
host=$("$XE" host-list --minimal) || exit 1
name=$("$XE" host-param-get uuid="$host" param-name=hostname) || exit 1
"$XE" diagnostic-license-status >"$tmp/out" || exit 1
exec perl -e '
    my ($file, $host, $name) = @ARGV;
    open(my $f, "<", $file) or die;
    my @l = map { chomp; $_ } <$f>;
    my $fail = 0;
    sub bad { print STDERR "FAIL: @_\n"; $fail = 1 }
    bad("5 lines, not " . scalar(@l)) if @l != 5;
    # every line has the same length: cells padded to the column width
    my %len = map { length($_) => 1 } @l;
    bad("ragged lines") if keys(%len) != 1;
    my @h = split(/ +/, $l[0]);
    bad("heading: $l[0]") unless $l[0] =~
        /^Hostname +UUID +Features +Edition +Expiry +Days left *$/;
    bad("dividers") unless $l[1] =~ /^(- +){5}- *$/ && $l[3] eq $l[1];
    my $hn = substr($l[2], 0, length($name));
    bad("host row: $l[2]") unless $hn eq $name
        && $l[2] =~ /^\Q$name\E +\Q@{[substr($host, 0, 8)]}\E /;
    # no licence: expiry 0 (the epoch), so days left is negative; the
    # features known to be on when the licence does not say (XAPI
    # enabled_when_unknown)
    bad("expiry: $l[2]") unless $l[2] =~
        / 1970-01-01T00:00:00Z +-\d+\.\d *$/;
    for my $t (qw(Live_migration AD Upd Start)) {
        bad("host lacks $t") unless $l[2] =~ / \Q$t\E /;
    }
    bad("host has VLAN: $l[2]") if $l[2] =~ / VLAN /;
    # the pool: its restrictions (restrict_vtpm=false turns VTPM on)
    bad("pool row: $l[4]") unless $l[4] =~ /^- +- +.* VTPM .*Start +- +- +- *$/;
    print "PASS: diagnostic-license-status\n" unless $fail;
    exit $fail;
' "$tmp/out" "$host" "$name"
