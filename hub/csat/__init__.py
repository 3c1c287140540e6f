"""Satisfaction surveys: asked on resolve, answered on the customer's channel or the survey page."""
