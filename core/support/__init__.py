"""Support: the levels customers buy per universe, tickets, and the SLA clocks the provider keeps."""
