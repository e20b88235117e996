"""Hand-over of marketing-qualified leads to sales (issue 9, N4, N5, S4).

- `models.py`: one `HandOver` per move to MQL, and the `WebhookDelivery` log of its webhook.
"""
