"""Order and stock questions: the SCM back end, automatic answers and drafts, escalation to the back office, demand."""
