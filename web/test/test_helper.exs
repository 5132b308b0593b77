# Request logs would clutter the output; they are still shown for failing tests.
ExUnit.start(capture_log: true)
