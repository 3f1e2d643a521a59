# What the Ruby peer harnesses share: the wall clock in microseconds, the
# benchmark payload, pacing, and the progress file a worker keeps for
# bench/run (jobs done, first start and last end in us, rewritten every
# 10 ms by a thread off the job path, plus push-to-start latencies).
module BenchStat
  def self.now_us
    Process.clock_gettime(Process::CLOCK_REALTIME, :microsecond)
  end

  def self.payload(i)
    { "prompt" => format("benchmark request %08d", i), "max_tokens" => 128,
      "temperature" => 0.5, "seed" => i }
  end

  def self.pace(n, rate)
    t0 = now_us
    n.times do |i|
      wait = (t0 + i * 1e6 / rate - now_us) / 1e6
      sleep(wait) if wait > 0
      yield i, now_us
    end
  end

  class Progress
    def initialize
      dir = ENV.fetch("BENCH_STATDIR")
      @file = "#{dir}/#{Process.pid}.stat"
      @latfile = "#{dir}/#{Process.pid}.lat"
      @count = @first = @last = 0
      @lat = []
      @mutex = Mutex.new
      flush
      Thread.new { loop { sleep 0.01; flush } }
    end

    def flush
      File.write("#{@file}.tmp", "#{@count} #{@first} #{@last}\n")
      File.rename("#{@file}.tmp", @file)
      lat = @mutex.synchronize { l = @lat; @lat = []; l }
      File.write(@latfile, lat.map { |x| "#{x}\n" }.join, mode: "a") unless lat.empty?
    end

    def start(data)
      now = BenchStat.now_us
      @mutex.synchronize do
        @first = now if @first.zero?
        @lat << now - data["t"] if data.is_a?(Hash) && data["t"]
      end
    end

    def finish
      now = BenchStat.now_us
      @mutex.synchronize { @count += 1; @last = now }
    end
  end

  def self.progress
    @progress ||= Progress.new
  end
end
