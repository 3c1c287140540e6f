"""The demo knowledge base: short help articles of a small online home-goods shop, written so the
demo conversations of hub/demo/seed.py (a late order, the KET-BLUE kettle and delivery to Lagos, a
double charge, "ships in 2 days" against a two-week delivery estimate) get sensible suggestions.
Seeded idempotently: each article is keyed "demo:<slug>", so seeding again changes nothing (and
an edited text here updates its article)."""

from __future__ import annotations

from sqlalchemy import Engine

from hub.kb import articles as kb

ARTICLES: list[tuple[str, str, tuple[str, ...], str]] = [
    ("shipping-times", "Shipping times and costs", ("shipping", "delivery"), """
Orders placed before 2 pm (UK time) on a working day leave our warehouse the same day; later
orders leave the next working day.

## Delivery times
- UK standard delivery: 2-4 working days, free over £40, otherwise £3.95.
- UK express delivery: next working day if ordered before 2 pm, £7.95.
- Europe: 4-8 working days, from £9.95.
- Rest of the world: see *International shipping*.

## Weekends and holidays
We do not dispatch on weekends or public holidays; count working days only.
"""),
    ("international-shipping", "International shipping (including Lagos, Nigeria)", ("shipping", "international"), """
We ship to over 60 countries with DHL Express and the national postal services.

## Delivery times outside Europe
- USA and Canada: 5-9 working days.
- Nigeria (Lagos, Abuja), Ghana and Kenya: 7-12 working days with DHL Express; Lagos addresses
  usually arrive at the faster end. Other Nigerian cities can take up to 15 working days.
- Asia and Australia: 6-12 working days.

## Customs, duties and taxes
Parcels outside the UK may be charged import duty and VAT by the destination country. These are
paid by the recipient on delivery; the courier contacts you before delivering. For Nigeria, DHL
asks for payment of duties before release.

## Costs
International shipping is calculated at checkout from the parcel's weight, from £14.95.
"""),
    ("dispatch-vs-delivery-estimate", "\"Ships in 2 days\" but checkout says 2 weeks: which is right?", ("shipping", "delivery", "stock"), """
Both can be right, because they measure different things.

"Ships in 2 days" on a product page is the **dispatch time**: how long we need to pack the item
and hand it to the courier when it is in stock at our warehouse.

The date at checkout is the **delivery estimate** for your whole order to your address. It adds
the courier's transit time for your country and the delivery option you chose, and, when any
item in the basket is on back-order or ships from a supplier, that item's restock date. One
back-ordered item moves the estimate for the whole order unless you choose split delivery.

If the checkout estimate looks too long, check the basket for an item marked "back-order" or
"ships from supplier", choose split delivery, or contact us and we will check the stock for you.
"""),
    ("late-order", "Where is my order? It has not arrived yet", ("delivery", "orders", "delay"), """
Most orders arrive within the delivery time shown at checkout. If your order was due and has not
arrived yet:

1. Check the tracking link in your dispatch email: the courier shows where the parcel is and any
   delivery attempt (a card may have been left).
2. Allow two extra working days after the estimated date: couriers sometimes run late at busy
   times, in bad weather or at customs for international parcels.
3. Check with neighbours and your building's reception or parcel locker.

If the parcel has still not arrived two working days after the estimated delivery date, contact
us with your order number. We open an investigation with the courier and, if the parcel is lost,
send a replacement or a full refund, whichever you prefer.
"""),
    ("order-tracking", "How do I track my order?", ("orders", "tracking"), """
When your order leaves our warehouse we email you a dispatch confirmation with the courier's name
and a tracking number. Tracking usually shows the first scan within 24 hours.

You can also see the status of every order under **My account > Orders**: received, packing,
dispatched (with the tracking link) or delivered.

"Label created" without further scans means the courier has not collected the parcel yet; it
normally updates the next working day.
"""),
    ("returns", "Returns: how to send an item back", ("returns",), """
You can return any item within 30 days of delivery, unused and in its original packaging.

## How to return
1. Go to **My account > Orders**, choose the order and click *Return items*.
2. Select the items and the reason; print the prepaid label (free for UK returns).
3. Drop the parcel at any post office or courier point within 14 days.

International customers can return items at their own cost with a tracked service.

Items that are personalised, or hygiene products that have been opened, cannot be returned
unless they are faulty.
"""),
    ("refunds", "Refunds: when will I get my money back?", ("returns", "refunds", "payments"), """
We refund to the original payment method within 3 working days of receiving your return at our
warehouse. You get an email when the refund is issued.

Depending on your bank it then takes 3-5 working days to appear on a card statement, and up to 24
hours for PayPal. Original shipping costs are refunded when the whole order is returned or the
item was faulty.
"""),
    ("double-charge", "I was charged twice for my order", ("payments", "billing"), """
If you see two payments for one order, one of them is usually a **pending authorisation**, not a
charge: when a payment is retried (after a timeout or a declined first attempt), the bank may show
the first attempt as pending for a few days. It disappears by itself within 3-7 working days and
the money is never taken.

If both payments show as completed (not pending), you were charged twice. Send us the order
number and the date and amount of both payments: we check them with our payment provider and
refund the duplicate within 2 working days. A refund then takes 3-5 working days to reach your
card.
"""),
    ("payment-methods", "Payment methods we accept", ("payments",), """
We accept Visa, Mastercard and American Express debit and credit cards, PayPal, Apple Pay and
Google Pay. Klarna lets you pay in three instalments in the UK.

We take payment when you place the order. Prices are shown in pounds sterling; your bank converts
other currencies at its own rate. We do not accept cheques or cash on delivery.
"""),
    ("payment-declined", "My payment was declined", ("payments",), """
A declined payment is decided by your bank, not by us. Common reasons: the billing address does
not match the card's address, the card's online or international payments are switched off, or
the 3-D Secure check in your banking app was not approved in time.

Check these and try again, or use another payment method such as PayPal. A declined attempt can
show as a pending amount on your statement for a few days; it is released automatically.
"""),
    ("change-address", "Changing the delivery address", ("orders", "delivery"), """
You can change the delivery address while the order's status is *received*: open it under
**My account > Orders** and click *Change address*, or contact us.

Once the order is *packing* or *dispatched* we can no longer change it ourselves. For dispatched
parcels, use the courier's own service from the tracking page to redirect the parcel or deliver
it to a neighbour or a pick-up point.
"""),
    ("cancel-order", "Cancelling an order", ("orders",), """
Orders can be cancelled free of charge until they are packed, usually within an hour of ordering
for in-stock items. Open the order under **My account > Orders** and click *Cancel*.

If the button is no longer there, the order is already on its way: refuse the delivery or return
it within 30 days for a full refund (see *Returns*). Back-ordered items can be cancelled any time
before they ship.
"""),
    ("ket-blue-care", "KET-BLUE electric kettle: use, cleaning and descaling", ("product", "kettle", "KET-BLUE"), """
The KET-BLUE is our 1.7 litre blue enamel electric kettle (3 kW) with a removable limescale
filter and automatic shut-off.

## First use
Fill to the MAX mark, boil, and pour the water away. Do this twice to remove any taste from the
manufacturing.

## Cleaning
Wipe the outside with a damp cloth; never put the kettle or its base in water or the dishwasher.
Rinse the limescale filter under the tap every week.

## Descaling
In hard-water areas descale monthly: half fill with equal parts water and white vinegar (or a
citric acid descaler), boil, leave for an hour, then rinse and boil fresh water twice.
"""),
    ("ket-blue-troubleshooting", "KET-BLUE kettle does not switch on or switches off early", ("product", "kettle", "KET-BLUE"), """
- **Does not switch on:** check the kettle sits flat on its base and the socket works. The kettle
  will not start when empty (dry-boil protection); let it cool for 10 minutes and fill it.
- **Switches off before boiling:** limescale on the element makes the thermostat trip early.
  Descale it (see *KET-BLUE care*).
- **Water tastes of plastic or metal:** boil and discard water twice; descale with citric acid.

If it still does not work, it is covered by our 2-year warranty: contact us with the order number.
"""),
    ("stock-and-restock", "Is an item in stock? Sold-out items and back-in-stock alerts", ("stock", "product"), """
Whether an item is in stock is shown on its product page, and our agents can check the
warehouse for you. Product pages show live stock: *In stock* (ships in 1-2 working days), *Low stock*, *Back-order*
(with the expected restock date) or *Sold out*.

Click *Notify me* on a sold-out product to get an email the moment it is back in stock.
Back-ordered items can be ordered now: we reserve one for you from the next delivery and ship it
when it arrives. Popular items such as the KET-BLUE kettle are usually restocked within 2-3 weeks.
"""),
    ("warranty", "Warranty: 2 years on electrical products", ("warranty", "product"), """
All electrical products, including kettles and toasters, have a 2-year warranty from the delivery
date. It covers manufacturing faults, not wear, limescale damage or accidents.

To claim, send us your order number, a short description of the fault and a photo or video. We
send a free return label and replace or repair the item, or refund it if neither is possible.
"""),
    ("damaged-item", "My item arrived damaged or faulty", ("returns", "damaged"), """
We are sorry! Please send us a photo of the damage and of the packaging within 14 days of
delivery, with your order number. We send a replacement straight away (or a refund if you prefer)
and a free return label; you do not pay anything for a damaged or faulty item.

Keep the packaging until we have answered: the courier may need it for their claim.
"""),
    ("missing-item", "An item is missing from my parcel", ("orders", "delivery"), """
Large orders sometimes ship in more than one parcel: your dispatch email lists what each parcel
holds and its tracking number. Back-ordered items ship separately when they arrive.

If an item that should have been in the parcel is missing, contact us within 14 days with the
order number and a photo of the parcel's contents and label. We send the missing item at once.
"""),
    ("discount-codes", "My discount code does not work", ("payments", "promotions"), """
Check that the code is typed exactly (codes are case-sensitive), is still valid, and that your
basket meets its minimum spend. Codes do not apply to sale items or gift cards, and only one code
can be used per order.

If the code should work, contact us before ordering and we apply it for you. We cannot apply a
code to an order that has already been placed.
"""),
    ("account-password", "Resetting your password and managing your account", ("account",), """
Click *Forgot password* on the sign-in page and enter your email address: we send a reset link
valid for one hour. Check your spam folder if it does not arrive within a few minutes.

You can change your email address, delivery addresses and marketing preferences under
**My account > Details**. To delete your account and data, contact us; we confirm by email.
"""),
    ("order-confirmation", "I did not get an order confirmation email", ("orders", "account"), """
Confirmation emails are sent within a few minutes of ordering. Check your spam or promotions
folder, and that the email address in your account is correct.

If your order appears under **My account > Orders**, it was placed successfully even without the
email; we can resend the confirmation on request. If it does not appear, the payment did not go
through and you have not been charged (a pending authorisation is released by your bank).
"""),
]


def seed_knowledge_base(engine: Engine) -> dict[str, int]:
    """Create or update the demo articles; counts of created / updated / unchanged."""
    counts = {"created": 0, "updated": 0, "unchanged": 0}
    for slug, title, tags, body in ARTICLES:
        fields = kb.ArticleFields(title=title, body=body.strip(), format="markdown", language="en", tags=tags, published=True)
        outcome, _ = kb.upsert_by_source(engine, fields, f"demo:{slug}", actor="demo")
        counts[outcome] += 1
    return counts
