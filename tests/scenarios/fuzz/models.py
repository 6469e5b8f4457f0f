from django.db import models


class Account(models.Model):
    email = models.CharField(max_length=100)
    name = models.CharField(max_length=100)
    status = models.CharField(max_length=20, null=True)
    score = models.IntegerField(null=True)
    level = models.IntegerField(null=True)
    tag = models.ForeignKey("Tag", null=True, on_delete=models.SET_NULL)
    flag = models.BooleanField(db_default=False)

    class Meta:
        app_label = "fuzz"
        indexes = [
            models.Index(fields=["name"], name="fuzz_account_name_idx"),
            models.Index(fields=["email"], name="fuzz_account_email_idx"),
        ]


class Order(models.Model):
    total = models.IntegerField()
    account = models.ForeignKey(Account, on_delete=models.CASCADE)
    note = models.CharField(max_length=20, null=True)

    class Meta:
        app_label = "fuzz"
        constraints = [
            models.CheckConstraint(condition=models.Q(total__gte=0), name="fuzz_order_total_gte_0")
        ]


class Tag(models.Model):
    name = models.CharField(max_length=30)

    class Meta:
        app_label = "fuzz"
