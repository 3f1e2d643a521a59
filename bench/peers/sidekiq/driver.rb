# Sidekiq harness of bench/run. Subcommands:
#   enqueue N bulk|single   prints the seconds the pushes took
#   fill N                  N pending no-op jobs, pushed in bulk (push_bulk)
#   work                    one worker process (the sidekiq command) until SIGTERM
#   pace N RATE             W3: N jobs one at a time at RATE/s
# Settings: see README.md beside this file.
require_relative "jobs"

cmd, a, b = ARGV
case cmd
when "work"
  conc = ENV.fetch("BENCH_CONCURRENCY", "10")
  exec("sidekiq", "-r", File.join(__dir__, "jobs.rb"), "-q", "bench", "-c", conc)
when "enqueue", "fill"
  n = Integer(a)
  t0 = BenchStat.now_us
  if b == "single"
    n.times { |i| NoopJob.perform_async(BenchStat.payload(i)) }
  else
    (0...n).each_slice(1000) do |s|
      Sidekiq::Client.push_bulk("class" => NoopJob, "args" => s.map { |i| [BenchStat.payload(i)] })
    end
  end
  puts((BenchStat.now_us - t0) / 1e6) if cmd == "enqueue"
when "pace"
  BenchStat.pace(Integer(a), Float(b)) do |i, t|
    NoopJob.perform_async(BenchStat.payload(i).merge("t" => t))
  end
else
  abort "sidekiq driver: unknown subcommand #{cmd}"
end
