"""A small set of lines with answers worked out by hand (METRICS.md terms in the comments).

Line totals: 1 15.30, 2 20.34, 3 11.10, 4 0.001, 5 -27.50, 6 6.30, 7 18.00, 8 12.50,
9 12.50, 10 30.60, 11 23.73, 12 -6.78, 13 100.00, 14 0, 15 30.00, 16 40.56, 17 25.20, 18 -25.20.
"""

ROWS = [
    # Wed 2010-12-01: customer 17850; invoice 536366 spans 08:59 -> 09:00 (its date is 08:59)
    ("536365", "85123A", "WHITE HANGING HEART", 6, "2010-12-01 08:26:00", "2.55", "17850", "United Kingdom"),
    ("536365", "71053", "WHITE METAL LANTERN", 6, "2010-12-01 08:26:00", "3.39", "17850", "United Kingdom"),
    ("536366", "22633", "HAND WARMER UNION JACK", 6, "2010-12-01 08:59:00", "1.85", "17850", "United Kingdom"),
    ("536366", "22632", "HAND WARMER RED POLKA DOT", 1, "2010-12-01 09:00:00", "0.001", "17850", "United Kingdom"),
    ("C536379", "D", "Discount", -1, "2010-12-01 09:41:00", "27.50", "17850", "United Kingdom"),  # cancellation, service
    # Sun 2010-12-05 (week of Mon 11-29): a guest, with postage (a service sale line)
    ("536367", "84879", "ASSORTED COLOUR BIRD ORNAMENT", 3, "2010-12-05 10:00:00", "2.10", None, "France"),
    ("536367", "POST", "POSTAGE", 1, "2010-12-05 10:00:00", "18", None, "France"),
    # Mon 2010-12-06 (a new week): customer 12583; two invoices of 12.50 (a tie: 536400 first)
    ("536400", "21730", "GLASS STAR FROSTED T-LIGHT HOLDER", 10, "2010-12-06 11:00:00", "1.25", "12583", "France"),
    ("536401", "85123A", "CREAM HANGING HEART", 5, "2010-12-06 11:30:00", "2.50", "12583", "France"),
    # January 2011
    ("539000", "85123A", None, 12, "2011-01-10 09:15:00", "2.55", "17850", "United Kingdom"),
    ("539000", "71053", "WHITE METAL LANTERN", 7, "2011-01-10 09:15:00", "3.39", "17850", "United Kingdom"),
    ("C539001", "71053", "WHITE METAL LANTERN", -2, "2011-01-10 10:00:00", "3.39", "17850", "United Kingdom"),
    ("A539002", "B", "Adjust bad debt", 1, "2011-01-11 12:00:00", "100.00", None, "United Kingdom"),  # adjustment
    ("539003", "22633", "HAND WARMER UNION JACK", 30, "2011-01-11 14:00:00", "0", "12583", "France"),  # price 0: no sale
    ("539004", "21730", "GLASS STAR FROSTED T-LIGHT HOLDER", 24, "2011-01-12 15:00:00", "1.25", "13047", "Germany"),
    ("539004", "84879", "ASSORTED COLOUR BIRD ORNAMENT", 24, "2011-01-12 15:00:00", "1.69", "13047", "Germany"),
    # February 2011: a sale and another customer's cancellation, netting to zero
    ("540000", "22632", "HAND WARMER RED POLKA DOT", 12, "2011-02-01 08:00:00", "2.10", "12583", "France"),
    ("C540001", "22632", "HAND WARMER RED POLKA DOT", -12, "2011-02-01 09:00:00", "2.10", "13047", "Germany"),
]

NET_REVENUE = "286.651"
MONTHS = [("2010-12-01 00:00:00", "68.541"), ("2011-01-01 00:00:00", "218.11"), ("2011-02-01 00:00:00", "0.00")]
WEEKS = [("2010-11-29 00:00:00", "43.541"), ("2010-12-06 00:00:00", "25.00"),
         ("2011-01-10 00:00:00", "218.11"), ("2011-01-31 00:00:00", "0.00")]
# sold units over sale lines of products: 21730 34, 84879 27, 85123A 23, then a tie at 13
TOP_PRODUCTS = [("21730", 34), ("84879", 27), ("85123A", 23), ("22632", 13), ("71053", 13), ("22633", 6)]
