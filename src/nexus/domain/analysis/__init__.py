"""AI analysis of conversations: what an analysis holds, what is sent, and the job's rules."""
