"""The job queue: the predictions table is the queue; leases, workers and the reaper."""
