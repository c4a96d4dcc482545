"""Routers: parse, authorise, call one service function, return."""
