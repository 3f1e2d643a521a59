# The Sidekiq side of the Sidekiq harness: the connection, the log level,
# and a no-op job that notes its start and end for bench/run. Loaded by the
# sidekiq command (sidekiq -r) and by driver.rb.
require "sidekiq"
require "redis"
# ruby-redis 4.8 prints a deprecation warning on every push from Sidekiq 6.4.
Redis.silence_deprecations = true
require_relative "../common/benchstat"

redis = { url: "redis://127.0.0.1:#{ENV.fetch('BENCH_REDIS_PORT')}/0" }
Sidekiq.configure_client { |c| c.redis = redis }
Sidekiq.configure_server do |c|
  c.redis = redis
  # Sidekiq logs two lines per job at info; a fast setup logs warnings only.
  c.logger.level = Logger::WARN
  c.on(:startup) { BenchStat.progress }
end

class NoopJob
  include Sidekiq::Worker
  # The default keeps nothing after success; a failed job is retried.
  sidekiq_options queue: "bench"

  def perform(data)
    p = BenchStat.progress
    p.start(data)
    p.finish
  end
end
