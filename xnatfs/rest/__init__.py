"""REST shapes (L2): URL building and parsing of XNAT's ResultSet/JSON/XML bodies; pure functions."""
