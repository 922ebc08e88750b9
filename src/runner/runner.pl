# Lifeline runner: one long-lived process per data dir that forks a supervisor per attempt.
# Usage: perl runner.pl SOCKET_PATH IDLE_SECONDS
#
# Why: supervisor.sh costs five exec'd processes per attempt, and a spawn from the server forks
# the whole server. Here the server sends a launch request over a unix socket; this small process
# forks (no exec) a supervisor, which forks the plan (the one exec). The supervisor does exactly
# what supervisor.sh does and writes the same records, so recovery reads the same run dir:
#   supervisor  "PID STARTTIME BOOTID"   the supervisor (a forked child of this runner)
#   process     "PID STARTTIME BOOTID"   the plan process (its session and group id = PID)
#   exit        "RC SIGNAL"              written by temp file + fsync + rename + dir fsync
# Each supervisor is its own process in its own session: the death of this runner, or of another
# attempt's supervisor, touches no running attempt.
#
# Protocol (the server is the only client; the socket lives in the owner-only data dir, and a client
# whose uid (SO_PEERCRED) is not ours is closed unanswered):
#   request  "<bytes>\n" then that many bytes: fields each ended by "\0":
#            L id dir cwd argc argv... envc env...      launch an attempt
#            C id cwd secs out argc argv... envc env... run a check (no run dir, no records); when
#                                                       `out` is a path, its first output lines go there
#            K id                                       kill a check's group
#   replies  "S id pid\n"     the supervisor was forked (pid is the supervisor's)
#            "F id reason\n"  it could not be forked
#            "E id status\n"  the supervisor exited (0: exit record durable; 125: could not record)
#            "X id rc\n"      the check ended: its exit code, or "-" when a signal ended it
# The runner exits once no client has been connected for IDLE_SECONDS; supervisors live on. Checks do
# not: a check belongs to the server that asked for it, so when that server's connection closes (it
# stopped, or died even by SIGKILL) its running checks' groups are killed at once.
# Only modules of Debian's Essential perl-base are used.
use strict;
use warnings;
use Config;
use Errno qw(EINTR);
use Fcntl qw(O_WRONLY O_CREAT O_TRUNC O_EXCL O_RDONLY O_DIRECTORY O_NOFOLLOW);
use IO::Handle;
use IO::Select;
use IO::Socket::UNIX;
use POSIX qw(setsid _exit WNOHANG dup2);
use Socket qw(SOCK_STREAM SOL_SOCKET SO_PEERCRED);

my ($socket_path, $idle) = @ARGV;
die "usage: runner.pl SOCKET_PATH IDLE_SECONDS\n" unless defined $socket_path && defined $idle;

umask 077;
$SIG{PIPE} = 'IGNORE';
my @sig_name = split ' ', $Config{sig_name};

sub read_line_file {
  my ($file) = @_;
  open(my $fh, '<', $file) or return undef;
  my $line = <$fh>;
  close $fh;
  return $line;
}

my $boot = read_line_file('/proc/sys/kernel/random/boot_id');
die "runner: no boot id\n" unless defined $boot;
chomp $boot;

# Field 22 of /proc/PID/stat; comm (field 2) may hold spaces and ')', so split after the last ')'.
sub start_of {
  my ($pid) = @_;
  my $line = read_line_file("/proc/$pid/stat");
  return undef unless defined $line && $line =~ /\)([^)]*)$/;
  my @f = split ' ', $1;
  return defined $f[19] && $f[19] =~ /^\d+$/ ? $f[19] : undef;
}

# Writes "TEXT\n" to FILE in place; readers take a record only once its "\n" is there.
sub put {
  my ($file, $text) = @_;
  open(my $fh, '>', $file) or return 0;
  print {$fh} "$text\n" or return 0;
  return close $fh;
}

# Atomically replaces DIR/NAME: temp file, fsync, rename, fsync of the dir.
sub put_durable {
  my ($dir, $name, $text) = @_;
  my $tmp = "$dir/.$name.tmp";
  open(my $fh, '>', $tmp) or return 0;
  (print {$fh} "$text\n") && $fh->flush && $fh->sync or return 0;
  close $fh or return 0;
  rename($tmp, "$dir/$name") or return 0;
  sysopen(my $dh, $dir, O_RDONLY | O_DIRECTORY) or return 0;
  my $ok = $dh->sync;
  close $dh;
  return $ok;
}

# The plan: a new session, its identity recorded before exec, output to files, stdin /dev/null.
# If its identity cannot be recorded it never runs: exit 125, as supervisor.sh.
sub exec_plan {
  my ($dir, $cwd, $argv, $env) = @_;
  setsid() or _exit(125);
  my $start = start_of($$);
  _exit(125) unless defined $start && put("$dir/process", "$$ $start $boot");
  sysopen(my $in, '/dev/null', O_RDONLY) or _exit(125);
  sysopen(my $out, "$dir/stdout", O_WRONLY | O_CREAT | O_TRUNC, 0600) or _exit(125);
  sysopen(my $err, "$dir/stderr", O_WRONLY | O_CREAT | O_TRUNC, 0600) or _exit(125);
  dup2(fileno($in), 0) // _exit(125);
  dup2(fileno($out), 1) // _exit(125);
  dup2(fileno($err), 2) // _exit(125);
  chdir($cwd) or _exit(125);
  %ENV = ();
  for my $kv (@$env) {
    my $i = index($kv, '=');
    $ENV{ substr($kv, 0, $i) } = substr($kv, $i + 1) if $i > 0;
  }
  # execvp with the plan's PATH; the block form never goes through a shell.
  { no warnings 'exec'; exec { $argv->[0] } @$argv; }
  my $code = $!{ENOENT} ? 127 : 126;
  print STDERR "lifeline runner: failed to execute $argv->[0]: $!\n";
  _exit($code);
}

# The supervisor (a forked child of the runner): records itself, forks the plan, waits, records.
sub supervise {
  my ($dir, $cwd, $argv, $env) = @_;
  setsid();
  my $start = start_of($$);
  _exit(125) unless defined $start && put("$dir/supervisor", "$$ $start $boot");
  my $pid = fork();
  _exit(125) unless defined $pid;
  exec_plan($dir, $cwd, $argv, $env) if $pid == 0;
  my $got;
  do { $got = waitpid($pid, 0) } while ($got == -1 && $! == EINTR);
  my $status = $?;
  my ($rc, $sig) = ($status >> 8, '-');
  if ($status & 127) {
    my $n = $status & 127;
    ($rc, $sig) = (128 + $n, defined $sig_name[$n] ? "SIG$sig_name[$n]" : $n);
  }
  _exit(put_durable($dir, 'exit', "$rc $sig") ? 0 : 125);
}

# The socket is made in the cwd (the data dir): it must be ours and no one else's to write to, or
# another user could swap the socket for theirs.
my @dir = stat('.') or die "runner: cannot stat the data dir: $!\n";
die "runner: the data dir is owned by uid $dir[4], not $>\n" unless $dir[4] == $>;
die "runner: the data dir is group or world writable\n" if $dir[2] & 022;

# Only a client of our own uid may ask for launches (SO_PEERCRED: the kernel's word, not the client's).
sub peer_is_us {
  my ($c) = @_;
  my $cred = getsockopt($c, SOL_SOCKET, SO_PEERCRED) or return 0;
  my (undef, $uid) = unpack('iII', $cred);
  return defined $uid && $uid == $>;
}

unlink $socket_path;
my $listener = IO::Socket::UNIX->new(Type => SOCK_STREAM, Local => $socket_path, Listen => 64)
  or die "runner: cannot listen on $socket_path: $!\n";
# SIGCHLD writes to a self-pipe, so a supervisor's end wakes the select loop at once.
pipe(my $wake_r, my $wake_w) or die "runner: pipe: $!\n";
$wake_w->blocking(0);
$wake_r->blocking(0);
$SIG{CHLD} = sub { syswrite($wake_w, 'x') };
my $sel = IO::Select->new($listener, $wake_r);
my %inbuf;        # client fileno -> bytes received
my %client_of;    # supervisor pid -> [client handle, attempt id]
my %check_of;     # check guard pid -> [client handle, check id]
my %check_pid;    # check id -> guard pid
my %clients;      # fileno -> handle
my $last_client = time;
my $bound = 1;

sub reply {
  my ($fh, $text) = @_;
  return unless $fh && $clients{ fileno($fh) // -1 };
  syswrite($fh, $text);    # short and rare; a client that went away is dropped by the loop
}

sub reap {
  while ((my $pid = waitpid(-1, WNOHANG)) > 0) {
    my $status = $?;
    if (my $k = delete $check_of{$pid}) {
      delete $check_pid{ $k->[1] };
      reply($k->[0], "X $k->[1] " . ($status & 127 ? '-' : $status >> 8) . "\n");
      next;
    }
    my $c = delete $client_of{$pid} or next;
    reply($c->[0], "E $c->[1] " . ($status & 127 ? 125 : $status >> 8) . "\n");
  }
}

# A check's guard (a forked child of the runner, as a supervisor is): it leads the check's session and
# group, so one kill of the group ends the check and all it started. It kills the group itself at the
# deadline, or when the runner is gone (polled each second: a runner that died cannot kill it). It
# ends as the check did: its exit code, or the same signal. With `$out`, the check's stdout and stderr
# (one pipe, so interleaved as written) are read here and their first CHECK_LINES lines, at most
# CHECK_BYTES, written to that file; the rest is read and dropped, so a flood costs neither memory
# nor disk. Without, the check's output goes where the runner's does (nowhere).
use constant { CHECK_LINES => 200, CHECK_BYTES => 1 << 20 };

sub guard_check {
  my ($cwd, $secs, $argv, $env, $out) = @_;
  setsid();
  my $runner = getppid();
  my $deadline = time + $secs + 1;    # whole seconds: never early (the server times it exactly)
  my $kill = sub { $SIG{TERM} = 'IGNORE'; kill 'KILL', -$$; _exit(137) };
  $SIG{TERM} = $kill;
  my ($r, $w, $o);
  # A file that cannot be opened (never through a symlink) leaves the output unkept, not the check unrun.
  if ($out ne '' && sysopen($o, $out, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW, 0600)) {
    pipe($r, $w) or _exit(125);
  }
  my $pid = fork();
  _exit(125) unless defined $pid;
  if ($pid == 0) {
    $SIG{$_} = 'DEFAULT' for qw(TERM ALRM PIPE);
    if ($w) {
      close $r;
      close $o;
      dup2(fileno($w), 1) or _exit(127);
      dup2(fileno($w), 2) or _exit(127);
      close $w;
    }
    chdir($cwd) or _exit(127);
    %ENV = ();
    for my $kv (@$env) {
      my $i = index($kv, '=');
      $ENV{ substr($kv, 0, $i) } = substr($kv, $i + 1) if $i > 0;
    }
    { no warnings 'exec'; exec { $argv->[0] } @$argv; }
    _exit(127);
  }
  $SIG{ALRM} = sub { $kill->() if getppid() != $runner || time >= $deadline; alarm(1) };
  alarm(1);
  if ($r) {
    close $w;
    my ($lines, $bytes, $buf) = (0, 0, '');
    for (;;) {
      my $n = sysread($r, $buf, 65536);
      if (!defined $n) { next if $!{EINTR}; last }
      last if $n == 0;
      next if $lines >= CHECK_LINES || $bytes >= CHECK_BYTES;
      my $keep = 0;    # bytes of $buf up to the CHECK_LINES-th newline
      while ($lines < CHECK_LINES) {
        my $i = index($buf, "\n", $keep);
        if ($i < 0) { $keep = $n; last }
        $keep = $i + 1;
        $lines++;
      }
      $keep = CHECK_BYTES - $bytes if $keep > CHECK_BYTES - $bytes;
      $bytes += $keep;
      syswrite($o, $buf, $keep) if $keep > 0;
    }
    close $r;
    close $o;
  }
  while (waitpid($pid, 0) == -1) { $kill->() unless $!{EINTR} }
  my $st = $?;
  alarm(0);
  if ($st & 127) { $SIG{TERM} = 'DEFAULT'; kill $st & 127, $$; }
  _exit($st >> 8);
}

sub run_check {
  my ($fh, @f) = @_;
  my ($op, $id, $cwd, $secs, $out, $argc) = splice(@f, 0, 6);
  return unless defined $argc && $id =~ /^[A-Za-z0-9_-]+$/ && $argc =~ /^\d+$/;
  my @argv = splice(@f, 0, $argc);
  my $envc = shift @f;
  return reply($fh, "F $id bad request\n")
    unless @argv && defined $envc && $envc =~ /^\d+$/ && $secs =~ /^\d+$/;
  my @env = splice(@f, 0, $envc);
  my $pid = fork();
  return reply($fh, "F $id fork: $!\n") unless defined $pid;
  if ($pid == 0) {
    $SIG{PIPE} = 'DEFAULT';
    $SIG{CHLD} = 'DEFAULT';
    close $_ for $listener, $wake_r, $wake_w;
    close $_ for values %clients;
    guard_check($cwd, $secs, \@argv, \@env, $out);
  }
  $check_of{$pid} = [ $fh, $id ];
  $check_pid{$id} = $pid;    # no "S" reply: the server waits only for the end
}

# Kills a running check's group; only the client that asked for the check may.
sub kill_check {
  my ($fh, $id) = @_;
  my $pid = defined $id ? $check_pid{$id} : undef;
  kill 'KILL', -$pid if $pid && $check_of{$pid}[0] == $fh;
}

# The client is gone: its checks end with it (a supervisor, an attempt's, lives on).
sub drop_checks {
  my ($fh) = @_;
  for my $pid (keys %check_of) {
    kill 'KILL', -$pid if $check_of{$pid}[0] == $fh;
  }
}

sub launch {
  my ($fh, @f) = @_;
  my ($op, $id, $dir, $cwd, $argc) = splice(@f, 0, 5);
  return unless defined $argc && $op eq 'L' && $id =~ /^[A-Za-z0-9_-]+$/ && $argc =~ /^\d+$/;
  my @argv = splice(@f, 0, $argc);
  my $envc = shift @f;
  return reply($fh, "F $id bad request\n") unless @argv && defined $envc && $envc =~ /^\d+$/;
  my @env = splice(@f, 0, $envc);
  my $pid = fork();
  return reply($fh, "F $id fork: $!\n") unless defined $pid;
  if ($pid == 0) {
    $SIG{PIPE} = 'DEFAULT';
    $SIG{CHLD} = 'DEFAULT';
    close $_ for $listener, $wake_r, $wake_w;
    close $_ for values %clients;
    supervise($dir, $cwd, \@argv, \@env);
  }
  $client_of{$pid} = [ $fh, $id ];
  reply($fh, "S $id $pid\n");
}

sub serve_client {
  my ($fh) = @_;
  my $n = sysread($fh, my $chunk, 65536);
  if (!$n) {
    return if !defined $n && $! == EINTR;
    drop_checks($fh);
    $sel->remove($fh);
    delete $inbuf{ fileno($fh) };
    delete $clients{ fileno($fh) };
    close $fh;
    $last_client = time;
    return;
  }
  my $buf = \$inbuf{ fileno($fh) };
  $$buf .= $chunk;
  while ($$buf =~ /^(\d+)\n/) {
    my $len = $1;
    my $head = length($len) + 1;
    last if length($$buf) < $head + $len;
    my $msg = substr($$buf, $head, $len);
    substr($$buf, 0, $head + $len) = '';
    my @f = split /\0/, $msg, -1;
    pop @f if @f && $f[-1] eq '';
    my $op = $f[0] // '';
    if ($op eq 'C') { run_check($fh, @f) }
    elsif ($op eq 'K') { kill_check($fh, $f[1]) }
    else { launch($fh, @f) }
  }
}

while (1) {
  reap();
  if (!%clients && time - $last_client >= $idle) {
    # New connects now fail and start a new runner; one already queued is still served here. Unlink
    # once only: by the next idle turn the path may be a newer runner's.
    unlink $socket_path if $bound;
    $bound = 0;
    $listener->blocking(0);
    my $late = $listener->accept;
    exit 0 unless $late;
    next unless peer_is_us($late);
    $sel->add($late);
    $clients{ fileno($late) } = $late;
    $inbuf{ fileno($late) } = '';
  }
  my @ready = $sel->can_read(1);
  for my $fh (@ready) {
    if ($fh == $wake_r) {
      sysread($wake_r, my $drain, 4096);
    } elsif ($fh == $listener) {
      my $c = $listener->accept or next;
      if (!peer_is_us($c)) {
        close $c;
        next;
      }
      $sel->add($c);
      $clients{ fileno($c) } = $c;
      $inbuf{ fileno($c) } = '';
    } else {
      serve_client($fh);
    }
  }
}
