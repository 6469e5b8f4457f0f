from django.db import models


class Invoice(models.Model):
    number = models.TextField(unique=True)
    customer_email = models.EmailField()
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3, db_default="EUR")
    status = models.CharField(max_length=20, default="draft")
    issued_at = models.DateTimeField()
    due_on = models.DateField(null=True, blank=True)
    notes = models.TextField(null=True, blank=True)  # noqa: DJ001 - nullable: added online

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(amount__gte=0), name="invoice_amount_non_negative"
            ),
        ]

    def __str__(self) -> str:
        return self.number


class Payment(models.Model):
    METHODS = [("card", "Card"), ("transfer", "Bank transfer"), ("cash", "Cash")]

    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="payments")
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    paid_at = models.DateTimeField()
    method = models.CharField(max_length=20, choices=METHODS)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(amount__gt=0), name="payment_amount_positive"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.amount} on {self.invoice_id}"


class CreditNote(models.Model):
    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="credit_notes")
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"credit {self.amount} on {self.invoice_id}"
